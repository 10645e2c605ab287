"""Runs the binder whenever tasks or nodes change: one global key, one decision at a time."""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Iterable
from typing import Any

from controller.reconcilers.batch import commit_in_batches
from controller.reconcilers.informer import Informer
from controller.reconcilers.runner import Reconciler
from controller.scheduler.binder import plan_bindings
from controller.store.objects import CommitOp, ObjectStore, UpdateOp
from skiff.models.objects import Task

_KEY = "bind"


class BinderLoop(Reconciler):
    name = "scheduler"

    def __init__(self, store: ObjectStore, tasks: Informer, nodes: Informer) -> None:
        super().__init__(workers=1)
        self.store = store
        self.tasks = tasks
        self.nodes = nodes
        tasks.add_handler(self._on_task)
        nodes.add_handler(lambda _t, _n: self.enqueue_soon(_KEY))

    def _on_task(self, event: str, task: Task) -> None:
        # An unbound task wants a node; a deleted one may have freed room for another.
        if event == "DELETED" or task.spec.node_name is None:
            self.enqueue_soon(_KEY)

    def all_keys(self) -> Iterable[Hashable]:
        return [_KEY]

    async def reconcile(self, key: Any) -> None:
        tasks: list[Task] = self.tasks.items()
        pending = [t for t in tasks if t.spec.node_name is None]
        if not pending:
            return
        ops: list[CommitOp] = []
        for binding in plan_bindings(pending, self.nodes.items(), tasks):
            task = binding.task
            if binding.node is not None:
                spec = dataclasses.replace(task.spec, node_name=binding.node)
                status = dataclasses.replace(task.status, state="assigned", message="")
                ops.append(UpdateOp(dataclasses.replace(task, spec=spec, status=status)))
            elif task.status.message != binding.reason:
                status = dataclasses.replace(task.status, state="pending",
                                             message=binding.reason)
                ops.append(UpdateOp(dataclasses.replace(task, status=status)))
        await commit_in_batches(self.store, ops)
