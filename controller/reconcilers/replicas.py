"""Service → Tasks: one task per replica slot, as a pure plan.

Each slot 1..replicas holds at most one task that should run. A task is replaced when
its container hash differs from the service's (a spec change), and stopped when its
slot is beyond the replica count. Stopping a task bound to a node means setting its
desired state to shutdown so the node's agent stops the container first; a task no
node ever took, or that has already ended, is simply deleted.

A task no node has taken yet is also replaced when its placement is outdated: the
scheduler reads constraints from the task's copy of the spec, and placement is not part
of the container hash (moving constraints never restarts a running replica).

A global service (``deploy.mode: global``) has instead one task on every eligible node
(ready, schedulable, meeting its constraints), made already bound to that node, so it
never waits for the scheduler; see ``plan_global``.

Rolling updates: with `deploy.update_config`, outdated slots are replaced a batch at a
time (``rolling_slots``): at most `parallelism` slots in flight, a slot counting as done
once its new replica has run for `monitor` seconds; the next batch waits `delay` after
the last one finished; `order: start-first` keeps the old replica running until the new
one runs; a new replica that fails (or restarts, or turns unhealthy) within its monitor
pauses the update (`failure_action: pause`, beyond `max_failure_ratio`) until the spec
changes again. Without update_config every outdated task is replaced in one pass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from controller.scheduler.plugins import constraints, ready
from skiff.models.appspec import ServiceSpec
from skiff.models.objects import Node, ObjectMeta, Service, Task, TaskSpec, TaskStatus

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


def _current(task: Task, spec: ServiceSpec, want_hash: str) -> bool:
    if task.spec.spec_hash != want_hash:
        return False
    # Unbound, it will be placed by the placement it carries: that must be today's.
    return (task.spec.node_name is not None
            or task.spec.container.deploy.placement == spec.deploy.placement)


def plan_replicas(service: Service | None, tasks: list[Task],
                  new_id: Callable[[], str],
                  draining: frozenset[str] = frozenset(),
                  now: datetime | None = None) -> ReplicaPlan:
    """What to do so that ``tasks`` match ``service`` (None: the service is gone).

    A replica on a ``draining`` node moves start-first: a replacement is made (the
    scheduler puts it elsewhere), and the old one is stopped only once the replacement
    runs; one slot of the service moves at a time, so a drain never leaves it with
    fewer running replicas than before.
    """
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

    moving = sum(1 for slot in range(1, replicas + 1)
                 if _in_move(by_slot.get(slot, []), service, want_hash, draining))
    rollout = rolling_slots(service, by_slot, want_hash, now)
    for slot in range(1, replicas + 1):
        live = [t for t in by_slot.get(slot, []) if t.spec.desired_state == "running"]
        current = [t for t in live if _current(t, service.spec, want_hash)]
        staying = [t for t in current if t.spec.node_name not in draining]
        leaving = [t for t in current if t.spec.node_name in draining]
        if rollout is not None and not current and live and slot not in rollout.now:
            continue  # outdated, and not its turn yet: it keeps running as it is
        # Keep one current task per slot; anything else that should run is stopped,
        # except a leaving replica whose replacement does not run yet.
        keep = staying[-1] if staying else None
        hold = None
        if leaving and (keep is None or keep.status.state != "running"):
            hold = leaving[-1]
            if keep is None and moving < 1:
                keep = new_task(service, slot, new_id())
                create.append(keep)
                moving += 1
        start_first = rollout is not None and rollout.order == "start-first"
        if start_first and keep is None and hold is None and live:
            keep = new_task(service, slot, new_id())
            create.append(keep)
        for task in live:
            if task is keep or task is hold:
                continue
            if start_first and keep is not None and keep.status.state != "running":
                continue  # start-first: the old one runs until its replacement does
            _stop(task, shutdown, delete)
        if keep is None and hold is None:
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


@dataclass(frozen=True)
class RolloutStep:
    now: frozenset[int]  # outdated slots to replace in this pass
    order: str
    paused: str = ""  # why the update waits, if it is paused
    failed: bool = False  # paused by failing new replicas (what failure_action acts on)


def _since(stamp: str | None, now: datetime) -> float | None:
    if not stamp:
        return None
    try:
        then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (now - then).total_seconds()


def rolling_slots(service: Service, by_slot: dict[int, list[Task]], want_hash: str,
                  now: datetime | None) -> RolloutStep | None:
    """Which outdated slots may be replaced now under update_config (None: no rolling:
    all of them)."""
    conf = service.spec.deploy.update_config
    if service.status.paused:
        return RolloutStep(frozenset(), conf.order if conf else "stop-first",
                           "paused by skiff rollout pause (resume to go on)")
    if conf is None:
        return None
    now = now or datetime.now(UTC)
    outdated, in_flight, failed, updated = [], 0, 0, 0
    failures: list[str] = []
    last_done: float | None = None  # seconds since the last slot finished
    for slot in range(1, service.spec.replicas + 1):
        live = [t for t in by_slot.get(slot, []) if t.spec.desired_state == "running"]
        current = [t for t in live if t.spec.spec_hash == want_hash]
        if not current:
            if live:
                outdated.append(slot)
            continue
        if not any(t.spec.spec_hash != want_hash for t in by_slot.get(slot, [])):
            continue  # never updated in this rollout: nothing to watch
        task = current[-1]
        updated += 1
        ran = _since(task.status.started_at, now) if task.status.state == "running" else None
        if task.status.state == "failed" or task.status.restarts > 0 or \
                task.status.health == "unhealthy":
            failed += 1
            why = "unhealthy" if task.status.health == "unhealthy" else \
                f"exit code {task.status.exit_code}"
            failures.append(f"{task.metadata.name}: {why}")
        elif ran is None or ran < conf.monitor:
            in_flight += 1
        else:
            done = ran - conf.monitor
            last_done = done if last_done is None else min(last_done, done)
    order = conf.order
    if failed and conf.failure_action != "continue" and \
            failed / max(updated, 1) > conf.max_failure_ratio:
        return RolloutStep(frozenset(), order, f"update paused: {failed} of {updated} new "
                                               f"replicas failed ({'; '.join(failures[:3])})",
                           failed=True)
    if conf.delay and last_done is not None and last_done < conf.delay and in_flight == 0:
        return RolloutStep(frozenset(), order)
    budget = len(outdated) if conf.parallelism == 0 else conf.parallelism - in_flight
    return RolloutStep(frozenset(outdated[:max(budget, 0)]), order)


def rolling(service: Service, tasks: list[Task]) -> bool:
    """Whether an update_config rollout is under way (some replica still outdated)."""
    if service.spec.deploy.update_config is None:
        return False
    want = service.spec.container_hash()
    return any(t.spec.desired_state == "running" and t.spec.spec_hash != want
               for t in tasks)


def _in_move(slot_tasks: list[Task], service: Service, want_hash: str,
             draining: frozenset[str]) -> bool:
    """A slot whose replica is leaving a draining node and whose replacement exists but
    does not run yet."""
    current = [t for t in slot_tasks if t.spec.desired_state == "running"
               and _current(t, service.spec, want_hash)]
    leaving = any(t.spec.node_name in draining for t in current)
    staying = [t for t in current if t.spec.node_name not in draining]
    return leaving and bool(staying) and staying[-1].status.state != "running"


def eligible_nodes(spec: ServiceSpec, nodes: list[Node]) -> list[str]:
    """Names of the nodes a global service runs on: ready, schedulable, and meeting
    its constraints. Reservations are not checked (Swarm would leave such a task
    pending): a global task is made bound and never passes through the scheduler."""
    return sorted(n.metadata.name for n in nodes if ready.fits(n).fits
                  and constraints.fits(spec.deploy.placement.constraints, n).fits)


def _bound_task(service: Service, slot: int, task_id: str, node: str) -> Task:
    task = new_task(service, slot, task_id)
    return dataclasses.replace(
        task, spec=dataclasses.replace(task.spec, node_name=node),
        status=dataclasses.replace(task.status, state="assigned", message=""))


def _free_slot(used: set[int]) -> int:
    slot = 1
    while slot in used:
        slot += 1
    return slot


def plan_global(service: Service | None, tasks: list[Task], nodes: list[Node],
                new_id: Callable[[], str]) -> ReplicaPlan:
    """One current task on each eligible node; the rest stopped (None: service gone).

    A node keeps its slot number while it has tasks of the service (a replacement on
    the same node takes its predecessor's), so names and hostnames stay stable; a new
    node takes the lowest slot free.
    """
    if service is None:
        return plan_replicas(None, tasks, new_id)
    create: list[Task] = []
    shutdown: list[Task] = []
    delete: list[Task] = []
    by_node: dict[str | None, list[Task]] = {}
    for task in sorted(tasks, key=lambda t: (t.metadata.created_at, t.metadata.name)):
        if task.metadata.owner_uid != service.metadata.uid:
            _stop(task, shutdown, delete)
        else:
            by_node.setdefault(task.spec.node_name, []).append(task)

    want_hash = service.spec.container_hash()
    eligible = eligible_nodes(service.spec, nodes)
    kept: dict[str, Task] = {}
    for node in eligible:
        live = [t for t in by_node.get(node, []) if t.spec.desired_state == "running"]
        current = [t for t in live if t.spec.spec_hash == want_hash]
        keep = current[-1] if current else None
        for task in live:
            if task is not keep:
                _stop(task, shutdown, delete)
        if keep is not None:
            kept[node] = keep
    for node, node_tasks in by_node.items():
        if node not in eligible:  # gone, not ready, cordoned, constrained out, unbound
            for task in node_tasks:
                if task.spec.desired_state == "running":
                    _stop(task, shutdown, delete)

    used = {t.spec.slot for t in kept.values()}
    for node in eligible:
        if node in kept:
            continue
        earlier = by_node.get(node, [])
        slot = earlier[-1].spec.slot if earlier else 0
        slot = slot if slot > 0 and slot not in used else _free_slot(used)
        used.add(slot)
        create.append(_bound_task(service, slot, new_id(), node))

    for node_tasks in by_node.values():
        ended = [t for t in node_tasks if t.spec.desired_state == "shutdown" and t.terminal]
        delete.extend(ended[:max(0, len(ended) - TASK_HISTORY_PER_SLOT)])
    return ReplicaPlan(create, shutdown, delete)
