"""Keeps each service's Tasks matching its replicas (or, global, its eligible nodes) and
spec, and its status current."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from controller.reconcilers.batch import commit_in_batches
from controller.reconcilers.informer import Informer
from controller.reconcilers.replicas import plan_global, plan_replicas, rolling
from controller.reconcilers.runner import Reconciler
from controller.reconcilers.status import service_status
from controller.store.objects import CommitOp, CreateOp, DeleteOp, ObjectStore, UpdateOp
from skiff.models.kinds import TASK
from skiff.models.objects import Service, Task


def _task_id() -> str:
    return secrets.token_hex(5)


ROLLOUT_RECHECK = 1.0  # seconds between looks at a rollout waiting on time

class ServiceReconciler(Reconciler):
    name = "services"

    def __init__(self, store: ObjectStore, services: Informer, tasks: Informer,
                 nodes: Informer, new_id: Callable[[], str] = _task_id) -> None:
        super().__init__()
        self.store = store
        self.services = services
        self.tasks = tasks
        self.nodes = nodes
        self.new_id = new_id
        tasks.add_index("service", lambda t: (t.metadata.app, t.spec.service))
        services.add_handler(lambda _t, s: self.enqueue((s.metadata.app, s.metadata.name)))
        tasks.add_handler(lambda _t, t: self.enqueue_soon((t.metadata.app, t.spec.service)))
        # A node that comes, goes or changes labels changes where global services run.
        nodes.add_handler(lambda _t, _n: self._enqueue_global())

    def _enqueue_global(self) -> None:
        for svc in self.services.items():
            if svc.spec.deploy.mode == "global":
                self.enqueue_soon((svc.metadata.app, svc.metadata.name))

    def all_keys(self) -> Iterable[Hashable]:
        keys = {(s.metadata.app, s.metadata.name) for s in self.services.items()}
        keys |= {(t.metadata.app, t.spec.service) for t in self.tasks.items()}
        return sorted(keys)

    async def reconcile(self, key: Any) -> None:
        app, name = key
        service: Service | None = self.services.get(f"{app}/{name}")
        tasks: list[Task] = self.tasks.by_index("service", key)
        if service is not None and service.spec.deploy.mode == "global":
            plan = plan_global(service, tasks, self.nodes.items(), self.new_id)
        else:
            draining = frozenset(n.metadata.name for n in self.nodes.items() if n.spec.drain)
            plan = plan_replicas(service, tasks, self.new_id, draining)
            if service is not None and rolling(service, tasks):
                self.enqueue_after(key, ROLLOUT_RECHECK)  # monitor and delay run on time
        ops: list[CommitOp] = [CreateOp(t) for t in plan.create]
        ops += [UpdateOp(t) for t in plan.shutdown]
        ops += [DeleteOp(TASK, t.metadata.name, t.metadata.app, t.metadata.resource_version)
                for t in plan.delete]
        await commit_in_batches(self.store, ops)
        if service is None or not plan.empty:
            return
        status = service_status(service, tasks)
        if status != service.status:
            await self.store.update(dataclasses.replace(service, status=status))
