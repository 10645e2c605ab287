"""Service → Tasks: one task per replica slot, as a pure plan.

Each slot 1..replicas holds at most one task that should run. A task is replaced when
its container hash differs from the service's (a spec change), and stopped when its
slot is beyond the replica count. Stopping a task bound to a node means setting its
desired state to shutdown so the node's agent stops the container first; a task no
node ever took, or that has already ended, is simply deleted.

Rolling updates (update_config) refine "replace" later; today every outdated task is
replaced in one pass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from skiff.models.objects import ObjectMeta, Service, Task, TaskSpec, TaskStatus

# Ended tasks kept per slot so `describe` can show why a replica failed.
TASK_HISTORY_PER_SLOT = 2


@dataclass(frozen=True)
class ReplicaPlan:
    create: list[Task] = field(default_factory=list)
    shutdown: list[Task] = field(default_factory=list)  # set desired_state=shutdown
    delete: list[Task] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.create or self.shutdown or self.delete)


def new_task(service: Service, slot: int, task_id: str) -> Task:
    spec = service.spec
    return Task(
        metadata=ObjectMeta(
            name=f"{service.metadata.name}.{slot}.{task_id}",
            app=service.metadata.app,
            owner_uid=service.metadata.uid,
            labels={"skiff.app": service.metadata.app or "",
                    "skiff.service": service.metadata.name},
        ),
        spec=TaskSpec(
            service=service.metadata.name,
            slot=slot,
            spec_hash=spec.container_hash(),
            service_generation=service.metadata.generation,
            container=spec,
        ),
        status=TaskStatus(state="pending", message="waiting to be scheduled"),
    )


def _stop(task: Task, plan_shutdown: list[Task], plan_delete: list[Task]) -> None:
    if task.spec.node_name is None or task.terminal:
        plan_delete.append(task)
    elif task.spec.desired_state != "shutdown":
        spec = dataclasses.replace(task.spec, desired_state="shutdown")
        plan_shutdown.append(dataclasses.replace(task, spec=spec))


def plan_replicas(service: Service | None, tasks: list[Task],
                  new_id: Callable[[], str]) -> ReplicaPlan:
    """What to do so that ``tasks`` match ``service`` (None: the service is gone)."""
    create: list[Task] = []
    shutdown: list[Task] = []
    delete: list[Task] = []
    ordered = sorted(tasks, key=lambda t: (t.spec.slot, t.metadata.created_at, t.metadata.name))

    if service is None:
        for task in ordered:
            _stop(task, shutdown, delete)
        return ReplicaPlan(create, shutdown, delete)

    # Tasks owned by an earlier service of the same name never survive.
    own = [t for t in ordered if t.metadata.owner_uid == service.metadata.uid]
    for task in ordered:
        if task.metadata.owner_uid != service.metadata.uid:
            _stop(task, shutdown, delete)

    want_hash = service.spec.container_hash()
    replicas = service.spec.replicas
    by_slot: dict[int, list[Task]] = {}
    for task in own:
        by_slot.setdefault(task.spec.slot, []).append(task)

    for slot in range(1, replicas + 1):
        live = [t for t in by_slot.get(slot, []) if t.spec.desired_state == "running"]
        current = [t for t in live if t.spec.spec_hash == want_hash]
        # Keep one current task per slot; anything else that should run is stopped.
        keep = current[-1] if current else None
        for task in live:
            if task is not keep:
                _stop(task, shutdown, delete)
        if keep is None:
            create.append(new_task(service, slot, new_id()))

    for slot, slot_tasks in sorted(by_slot.items()):
        if slot > replicas:
            for task in slot_tasks:
                _stop(task, shutdown, delete)
        else:
            ended = [t for t in slot_tasks
                     if t.spec.desired_state == "shutdown" and t.terminal]
            delete.extend(ended[:max(0, len(ended) - TASK_HISTORY_PER_SLOT)])
    return ReplicaPlan(create, shutdown, delete)
