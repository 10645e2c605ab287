"""What `skiff get` shows of each kind, as table columns (wide adds more)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skiff.cli.output import age
from skiff.manifest.networks import requested_subnet
from skiff.models.objects import App, Endpoints, Event, Network, Node, Service, Task, Volume


def _ports(svc: Service | Endpoints) -> str:
    out = []
    for p in svc.spec.ports if isinstance(svc, Service) else svc.ports:
        head = f"{p.host_ip}:" if p.host_ip else ""
        pub = f"{head}{p.published}->" if p.published else ""
        out.append(f"{pub}{p.target}/{p.protocol}")
    return ",".join(out) or "-"


def _desired(svc: Service) -> int:
    # A global service wants one per eligible node: as many as the controller counted.
    return svc.status.replicas if svc.spec.deploy.mode == "global" else svc.spec.replicas


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f}Gi" if n else "-"


Columns = list[tuple[str, Callable[[Any], str]]]

APP_COLUMNS: Columns = [
    ("NAME", lambda a: a.metadata.name),
    ("SERVICES", lambda a: str(len(a.spec.services))),
    ("RUNNING", lambda a: f"{sum(c.running for c in a.status.services.values())}/"
                          f"{sum(c.desired for c in a.status.services.values())}"),
    ("GENERATION", lambda a: f"{a.status.observed_generation}/{a.metadata.generation}"),
    ("AGE", lambda a: age(a.metadata.created_at)),
]
SERVICE_COLUMNS: Columns = [
    ("APP", lambda s: s.metadata.app or ""),
    ("NAME", lambda s: s.metadata.name),
    ("IMAGE", lambda s: s.spec.image),
    ("MODE", lambda s: s.spec.deploy.mode),
    ("REPLICAS", lambda s: f"{s.status.running}/{_desired(s)}"),
    ("PORTS", _ports),
    ("AGE", lambda s: age(s.metadata.created_at)),
]
SERVICE_WIDE: Columns = [
    ("GENERATION", lambda s: f"{s.status.observed_generation}/{s.metadata.generation}"),
    ("SPEC", lambda s: s.spec.container_hash()),
]
TASK_COLUMNS: Columns = [
    ("APP", lambda t: t.metadata.app or ""),
    ("NAME", lambda t: t.metadata.name),
    ("NODE", lambda t: t.spec.node_name or "-"),
    ("DESIRED", lambda t: t.spec.desired_state),
    ("STATE", lambda t: t.status.state),
    ("AGE", lambda t: age(t.metadata.created_at)),
    ("MESSAGE", lambda t: t.status.message or ""),
]
TASK_WIDE: Columns = [
    ("CONTAINER", lambda t: (t.status.container_id or "-")[:12]),
    ("IP", lambda t: t.status.ip or "-"),
    ("EXIT", lambda t: "-" if t.status.exit_code is None else str(t.status.exit_code)),
    ("RESTARTS", lambda t: str(t.status.restarts)),
]
NODE_COLUMNS: Columns = [
    ("NAME", lambda n: n.metadata.name),
    ("STATUS", lambda n: "Ready" if n.status.ready else
     ("Down" if n.status.last_heartbeat else "NotReady")),
    ("AVAILABILITY", lambda n: "Drain" if n.spec.drain else
     ("Pause" if n.spec.unschedulable else "Active")),
    ("ADDRESS", lambda n: n.status.address or "-"),
    ("CPUS", lambda n: f"{n.status.capacity.cpus:g}"),
    ("MEMORY", lambda n: _gib(n.status.capacity.memory)),
    ("AGE", lambda n: age(n.metadata.created_at)),
]
NODE_WIDE: Columns = [
    ("LABELS", lambda n: ",".join(f"{k}={v}" for k, v in sorted(n.metadata.labels.items()))
     or "-"),
]


def _subnet(net: Network) -> str:
    # Until the controller allocates it, the one asked for (if any) is the best guess.
    return net.status.subnet or requested_subnet(net.spec) or "-"


NETWORK_COLUMNS: Columns = [
    ("NAME", lambda n: n.metadata.name),
    ("APP", lambda n: n.metadata.app or "-"),
    ("SUBNET", _subnet),
    ("VNI", lambda n: str(n.status.vni) if n.status.vni else "-"),
    ("NODES", lambda n: str(len(n.status.nodes))),
    ("READY", lambda n: "yes" if n.status.ready else "no"),
]
NETWORK_WIDE: Columns = [
    ("INTERNAL", lambda n: "yes" if n.spec.internal else "no"),
    ("ATTACHABLE", lambda n: "yes" if n.spec.attachable else "no"),
    ("AGE", lambda n: age(n.metadata.created_at)),
    ("MESSAGE", lambda n: n.status.message or ""),
]
ENDPOINTS_COLUMNS: Columns = [
    ("APP", lambda e: e.metadata.app or ""),
    ("NAME", lambda e: e.metadata.name),
    ("READY", lambda e: f"{sum(a.ready for a in e.addresses)}/{len(e.addresses)}"),
    ("NETWORKS", lambda e: ",".join(sorted(e.names)) or "-"),
    ("PORTS", _ports),
]
ENDPOINTS_WIDE: Columns = [
    ("NAMES", lambda e: ";".join(f"{n}={','.join(v)}" for n, v in sorted(e.names.items()))
     or "-"),
]

VOLUME_COLUMNS: Columns = [
    ("DRIVER", lambda v: v.spec.driver),
    ("VOLUME NAME", lambda v: v.metadata.name),
    ("NODE", lambda v: v.spec.node or "-"),
    ("APP", lambda v: v.metadata.app or "-"),
    ("STATE", lambda v: "removing" if v.spec.deleting else
     ("ready" if v.status.ready else "not made yet")),
]
VOLUME_WIDE: Columns = [
    ("MOUNTPOINT", lambda v: v.status.mountpoint or "-"),
    ("AGE", lambda v: age(v.metadata.created_at)),
]

EVENT_COLUMNS: Columns = [
    ("LAST SEEN", lambda e: age(e.at or e.metadata.created_at)),
    ("TYPE", lambda e: e.type),
    ("REASON", lambda e: e.reason),
    ("OBJECT", lambda e: f"{e.involved.kind.lower()}/"
                         f"{e.involved.app + '/' if e.involved.app else ''}{e.involved.name}"),
    ("MESSAGE", lambda e: e.message),
]

_BY_CLASS: dict[type, tuple[Columns, Columns]] = {
    App: (APP_COLUMNS, []),
    Service: (SERVICE_COLUMNS, SERVICE_WIDE),
    Task: (TASK_COLUMNS, TASK_WIDE),
    Node: (NODE_COLUMNS, NODE_WIDE),
    Network: (NETWORK_COLUMNS, NETWORK_WIDE),
    Endpoints: (ENDPOINTS_COLUMNS, ENDPOINTS_WIDE),
    Volume: (VOLUME_COLUMNS, VOLUME_WIDE),
    Event: (EVENT_COLUMNS, [("SOURCE", lambda e: e.source)]),
}


def columns_for(cls: type, wide: bool) -> Columns:
    base, extra = _BY_CLASS[cls]
    if not wide:
        return base
    # MESSAGE reads best last, after the wide columns.
    if base and base[-1][0] == "MESSAGE":
        return base[:-1] + extra + base[-1:]
    return base + extra


def row(columns: Columns, obj: Any) -> list[str]:
    return [fn(obj) for _, fn in columns]
