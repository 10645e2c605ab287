"""The cluster the DNS lab pretends to run: Endpoints for its containers (probe, web1,
db1 are real namespaces; web.2 and web.3 exist only as addresses)."""

from __future__ import annotations

from skiff.models.objects import EndpointAddress, Endpoints, ObjectMeta
from tests.integration.dns.lab import DB1_IP, PROBE_IP, WEB1_BACK, WEB1_FRONT

WEB_FRONT = [WEB1_FRONT, "10.1.0.12", "10.1.0.13"]
WEB_BACK = [WEB1_BACK, "10.2.0.12", "10.2.0.13"]


def address(task: str, hostname: str, ready: bool = True, **nets: str) -> EndpointAddress:
    return EndpointAddress(task=task, node="lab", vtep="192.0.2.1", hostname=hostname,
                           ready=ready, addresses=dict(nets))


def web_replica(i: int, ready: bool = True) -> EndpointAddress:
    return address(f"web.{i}", f"web{i}host", ready, front=f"10.1.0.{10 + i}",
                   back=f"10.2.0.{10 + i}")


def endpoints(name: str, names: dict[str, list[str]],
              addresses: list[EndpointAddress]) -> Endpoints:
    return Endpoints(metadata=ObjectMeta(name=name, app="lab"), names=names,
                     addresses=addresses)


def lab_endpoints(web: list[EndpointAddress] | None = None,
                  extra: list[Endpoints] | None = None) -> list[Endpoints]:
    return [
        endpoints("web", {"front": ["web", "www"], "back": ["web", "api"]},
                  web if web is not None else [web_replica(i) for i in (1, 2, 3)]),
        endpoints("db", {"back": ["db"]}, [address("db.1", "dbhost", back=DB1_IP)]),
        endpoints("probe", {"front": ["probe"]}, [address("probe.1", "prober",
                                                          front=PROBE_IP)]),
        *(extra or []),
    ]
