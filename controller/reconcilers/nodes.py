"""Runs the node lifecycle plan: on node and task events, and every second, since a
heartbeat that stops coming is itself no event."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Iterable
from datetime import UTC, datetime
from typing import Any

from controller.events import EventRecorder
from controller.reconcilers.batch import commit_in_batches
from controller.reconcilers.informer import Informer
from controller.reconcilers.node_plan import DEFAULT_GRACE_SECONDS, plan_nodes
from controller.reconcilers.runner import Reconciler
from controller.store.objects import CommitOp, ObjectStore, UpdateOp
from skiff.models.objects import InvolvedObject

_KEY = "nodes"
TICK_SECONDS = 1.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class NodeLifecycle(Reconciler):
    name = "nodes"

    def __init__(self, store: ObjectStore, nodes: Informer, tasks: Informer,
                 grace: float = DEFAULT_GRACE_SECONDS,
                 clock: Callable[[], datetime] = _utcnow,
                 events: EventRecorder | None = None) -> None:
        super().__init__(workers=1)
        self.events = events
        self.store = store
        self.nodes = nodes
        self.tasks = tasks
        self.grace = grace
        self.clock = clock
        nodes.add_handler(lambda _t, _n: self.enqueue_soon(_KEY))
        tasks.add_handler(lambda _t, _x: self.enqueue_soon(_KEY))

    def all_keys(self) -> Iterable[Hashable]:
        return [_KEY]

    async def reconcile(self, key: Any) -> None:
        plan = plan_nodes(self.nodes.items(), self.tasks.items(), self.clock(), self.grace)
        ops: list[CommitOp] = [UpdateOp(n) for n in plan.down]
        ops += [UpdateOp(t) for t in plan.lost]
        await commit_in_batches(self.store, ops)
        if self.events is not None:
            for node in plan.down:
                self.events.record(InvolvedObject("Node", node.metadata.name), "NodeDown",
                                   node.status.message or "no heartbeat", "Warning",
                                   source="node lifecycle")
            for task in plan.lost:
                self.events.record(InvolvedObject("Task", task.metadata.name,
                                                  task.metadata.app),
                                   "Orphaned", f"node {task.spec.node_name} is down; "
                                   "a replacement is made elsewhere", "Warning",
                                   source="node lifecycle")

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self.enqueue(_KEY)

    async def run(self) -> None:
        ticker = asyncio.create_task(self._tick())
        try:
            await super().run()
        finally:
            ticker.cancel()
