"""Service + its tasks + nodes → the service's Endpoints, pure.

What agents need to reach a service's replicas: the DNS names it has on each network,
its published ports and, per replica that has addresses, where it runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from skiff.models.objects import EndpointAddress, Endpoints, ObjectMeta, Service, Task


def task_hostname(task: Task) -> str:
    """The container's host name: the agent's rule (agent/launch.py ``hostname_of``),
    repeated here because the controller does not import the agent."""
    spec = task.spec.container
    return spec.hostname or f"{task.spec.service}-{task.spec.slot}".lower()[:63]


def _names(service: Service) -> dict[str, list[str]]:
    out = {}
    for network, attachment in sorted(service.spec.networks.items()):
        names = [service.metadata.name]
        names += [a for a in attachment.aliases if a not in names]
        out[network] = names
    return out


def _address(task: Task, vteps: Mapping[str, str]) -> EndpointAddress:
    node = task.spec.node_name or ""
    return EndpointAddress(
        task=task.metadata.name, node=node, vtep=vteps.get(node, ""),
        hostname=task_hostname(task),
        # A replica with a health check takes traffic (DNS, the mesh) once healthy.
        ready=task.status.state == "running" and task.spec.desired_state == "running"
        and task.status.health in (None, "healthy"),
        addresses=dict(sorted(task.status.networks.items())))


def desired_endpoints(service: Service, tasks: list[Task],
                      vteps: Mapping[str, str]) -> Endpoints:
    """The Endpoints of ``service``: one address per task that has network addresses
    and has not ended (stopping ones stay, not ready, until they are gone)."""
    addresses = [_address(t, vteps) for t in sorted(tasks, key=lambda t: t.metadata.name)
                 if t.status.networks and not t.terminal]
    meta = ObjectMeta(name=service.metadata.name, app=service.metadata.app,
                      owner_uid=service.metadata.uid,
                      labels={"skiff.app": service.metadata.app or ""})
    return Endpoints(metadata=meta, names=_names(service),
                     ports=[p for p in service.spec.ports if p.published is not None],
                     addresses=addresses)


@dataclass(frozen=True)
class EndpointsPlan:
    create: Endpoints | None = None
    update: Endpoints | None = None
    delete: Endpoints | None = None


def _same(a: Endpoints, b: Endpoints) -> bool:
    return (a.names, a.ports, a.addresses, a.metadata.owner_uid, a.metadata.labels) == \
        (b.names, b.ports, b.addresses, b.metadata.owner_uid, b.metadata.labels)


def plan_endpoints(service: Service | None, tasks: list[Task], vteps: Mapping[str, str],
                   current: Endpoints | None) -> EndpointsPlan:
    """Create, update (only when something changed) or delete (the service is gone)."""
    if service is None:
        return EndpointsPlan(delete=current)
    want = desired_endpoints(service, tasks, vteps)
    if current is None:
        return EndpointsPlan(create=want)
    if _same(want, current):
        return EndpointsPlan()
    meta = dataclasses.replace(current.metadata, owner_uid=want.metadata.owner_uid,
                               labels=want.metadata.labels)
    return EndpointsPlan(update=dataclasses.replace(want, metadata=meta))
