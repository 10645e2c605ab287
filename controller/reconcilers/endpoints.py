"""Keeps each service's Endpoints equal to what its tasks report, for every node's agent."""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterable
from typing import Any

from controller.reconcilers.endpoints_plan import plan_endpoints
from controller.reconcilers.informer import EventType, Informer
from controller.reconcilers.runner import Reconciler
from controller.store.errors import NotFound
from controller.store.objects import ObjectStore
from skiff.models.kinds import ENDPOINTS
from skiff.models.objects import Endpoints, Node, Service, Task

_BY_SERVICE = "endpoints.service"
_BY_NODE = "endpoints.node"


class EndpointsReconciler(Reconciler):
    name = "endpoints"

    def __init__(self, store: ObjectStore, services: Informer, tasks: Informer,
                 nodes: Informer, endpoints: Informer) -> None:
        super().__init__()
        self.store = store
        self.services = services
        self.tasks = tasks
        self.nodes = nodes
        self.endpoints = endpoints
        self._seen: dict[str, str] = {}  # node -> address, to skip heartbeat-only events
        tasks.add_index(_BY_SERVICE, lambda t: (t.metadata.app, t.spec.service))
        tasks.add_index(_BY_NODE, lambda t: t.spec.node_name)
        services.add_handler(lambda _t, s: self.enqueue((s.metadata.app, s.metadata.name)))
        # Task status comes in bursts (a rollout, a node coming back): one write per burst.
        tasks.add_handler(lambda _t, t: self.enqueue_soon((t.metadata.app, t.spec.service)))
        # Our own writes come back here too; they cost a read of the caches, no write.
        endpoints.add_handler(
            lambda _t, e: self.enqueue_soon((e.metadata.app, e.metadata.name)))
        nodes.add_handler(self._node_event)

    def _node_event(self, event: EventType, node: Node) -> None:
        name = node.metadata.name
        address = None if event == "DELETED" else node.status.address
        if self._seen.get(name) == address:
            return  # a heartbeat: the address (every replica's vtep there) is the same
        if address is None:
            self._seen.pop(name, None)
        else:
            self._seen[name] = address
        for task in self.tasks.by_index(_BY_NODE, name):
            self.enqueue_soon((task.metadata.app, task.spec.service))

    def all_keys(self) -> Iterable[Hashable]:
        keys = {(s.metadata.app, s.metadata.name) for s in self.services.items()}
        keys |= {(e.metadata.app, e.metadata.name) for e in self.endpoints.items()}
        return sorted(keys)

    async def reconcile(self, key: Any) -> None:
        app, name = key
        service: Service | None = self.services.get(f"{app}/{name}")
        current: Endpoints | None = self.endpoints.get(f"{app}/{name}")
        tasks: list[Task] = self.tasks.by_index(_BY_SERVICE, key)
        vteps = {n.metadata.name: n.status.address for n in self.nodes.items()}
        plan = plan_endpoints(service, tasks, vteps, current)
        if plan.create is not None:
            await self.store.create(plan.create)
        elif plan.update is not None:
            await self.store.update(plan.update)
        elif plan.delete is not None:
            with contextlib.suppress(NotFound):
                await self.store.delete(ENDPOINTS, name, app,
                                        resource_version=plan.delete.metadata.resource_version)
