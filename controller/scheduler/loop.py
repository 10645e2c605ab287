"""Runs the scheduler whenever tasks or nodes change: one global key, one pass at a time.

A pass builds the state from the caches (every bound task on its node, the home node of
each named volume), schedules the unbound tasks with the default profile, and writes the
bindings in batched transactions. A task that still fits nowhere gets the reason as its
status message, written only when it changed.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

from controller.events import EventRecorder
from controller.reconcilers.batch import commit_in_batches
from controller.reconcilers.informer import Informer
from controller.reconcilers.runner import Reconciler
from controller.scheduler.framework import Binding, Plugin, SchedulingState, schedule_on
from controller.scheduler.plugins import registry
from controller.scheduler.plugins.volume_affinity import volume_homes
from controller.scheduler.round_robin import round_robin
from controller.store.objects import CommitOp, ObjectStore, UpdateOp
from skiff.models.objects import InvolvedObject, Task

_KEY = "bind"
PASS_SIZE = 500


def binding_ops(bindings: Iterable[Binding]) -> list[CommitOp]:
    """Updates for the tasks that got a node, or whose pending reason changed."""
    ops: list[CommitOp] = []
    for binding in bindings:
        task = binding.task
        if binding.node is not None:
            spec = dataclasses.replace(task.spec, node_name=binding.node)
            status = dataclasses.replace(task.status, state="assigned", message="")
            ops.append(UpdateOp(dataclasses.replace(task, spec=spec, status=status)))
        elif task.status.message != binding.reason:
            status = dataclasses.replace(task.status, state="pending", message=binding.reason)
            ops.append(UpdateOp(dataclasses.replace(task, status=status)))
    return ops


class BinderLoop(Reconciler):
    name = "scheduler"

    def __init__(self, store: ObjectStore, tasks: Informer, nodes: Informer,
                 plugins: Sequence[Plugin] | None = None, strategy: str = "default",
                 volumes: Informer | None = None, events: EventRecorder | None = None) -> None:
        if strategy not in ("default", "round-robin"):
            raise ValueError(f"unknown scheduler {strategy!r} (default, round-robin)")
        self.strategy = strategy
        self._rotation = 0
        super().__init__(workers=1)
        self.store = store
        self.tasks = tasks
        self.nodes = nodes
        self.volumes = volumes
        self.events = events
        self.plugins = list(plugins) if plugins is not None else registry.build()
        tasks.add_handler(self._on_task)
        nodes.add_handler(lambda _t, _n: self.enqueue_soon(_KEY))
        if volumes is not None:
            volumes.add_handler(lambda _t, _v: self.enqueue_soon(_KEY))

    def _record(self, bindings: Iterable[Binding]) -> None:
        if self.events is None:
            return
        for b in bindings:
            involved = InvolvedObject("Task", b.task.metadata.name, b.task.metadata.app)
            if b.node is not None:
                self.events.record(involved, "Scheduled", f"placed on node {b.node}",
                                   source="scheduler")
            elif b.task.status.message != b.reason:
                self.events.record(involved, "FailedScheduling", b.reason, "Warning",
                                   source="scheduler")

    def _on_task(self, event: str, task: Task) -> None:
        # An unbound task wants a node; a deleted or ended one may have freed room; one
        # that runs (or ended) may be what a pending task's depends_on waits for.
        if event == "DELETED" or task.spec.node_name is None or task.terminal or \
                task.status.state == "running":  # health changes come as running too
            self.enqueue_soon(_KEY)

    def all_keys(self) -> Iterable[Hashable]:
        return [_KEY]

    async def reconcile(self, key: Any) -> None:
        tasks: list[Task] = self.tasks.items()
        pending = sorted((t for t in tasks if t.spec.node_name is None),
                         key=lambda t: (t.metadata.app or "", t.metadata.name))
        if not pending:
            return
        if self.strategy == "round-robin":
            bindings, self._rotation = round_robin(pending, self.nodes.items(),
                                                   self._rotation)
            await commit_in_batches(self.store, binding_ops(bindings))
            return
        nodes = self.nodes.items()
        state = await asyncio.to_thread(SchedulingState.build, nodes, tasks,
                                        volume_homes(tasks, self.volumes.items()
                                                     if self.volumes else ()))
        # A pass costs tasks x nodes: slices of it run off the event loop, so heartbeats
        # and API calls are served meanwhile; the state carries placements across slices.
        for start in range(0, len(pending), PASS_SIZE):
            chunk = pending[start:start + PASS_SIZE]
            bindings = await asyncio.to_thread(schedule_on, chunk, state, self.plugins)
            await commit_in_batches(self.store, binding_ops(bindings))
            self._record(bindings)
