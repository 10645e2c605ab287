"""Keeps each service's Tasks matching its replicas (or, global, its eligible nodes) and
spec, and its status current."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Hashable, Iterable
from datetime import UTC, datetime
from typing import Any

from controller.events import EventRecorder
from controller.reconcilers.app_plan import NotInApp, app_view
from controller.reconcilers.batch import commit_in_batches
from controller.reconcilers.informer import Informer
from controller.reconcilers.replicas import plan_global, plan_replicas, rolling, rolling_slots
from controller.reconcilers.runner import Reconciler
from controller.reconcilers.status import service_status, with_revision
from controller.store.errors import NotFound
from controller.store.objects import CommitOp, CreateOp, DeleteOp, ObjectStore, UpdateOp
from skiff.models.kinds import APP, TASK
from skiff.models.objects import App, InvolvedObject, Rollout, Service, Task


def _task_id() -> str:
    return secrets.token_hex(5)


ROLLOUT_RECHECK = 1.0  # seconds between looks at a rollout waiting on time
# The Event each rollout state is announced by, and its type.
ROLLOUT_EVENTS = {"updating": ("RolloutStarted", "Normal"),
                  "paused": ("RolloutPaused", "Warning"),
                  "rolling back": ("RollingBack", "Warning"),
                  "rolled back": ("RolledBack", "Warning"),
                  "completed": ("RolloutCompleted", "Normal")}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def rollout_state(service: Service, tasks: list[Task]) -> Rollout:
    """Where the service's latest rollout stands (pure): updating while a replica of an
    older spec should still run, paused when update_config says failures stop it,
    completed once none is left."""
    current = service.status.rollout
    want = service.spec.container_hash()
    by_slot: dict[int, list[Task]] = {}
    for t in tasks:
        by_slot.setdefault(t.spec.slot, []).append(t)
    outdated = any(t.spec.desired_state == "running" and t.spec.spec_hash != want
                   for t in tasks)
    if current.state in ("rolled back", "rolling back"):
        return current  # until the next change of spec
    progress = rolling_slots(service, by_slot, want, None)
    if progress is not None and progress.paused and (progress.failed or outdated):
        return Rollout("paused", progress.paused)
    if outdated:
        return Rollout("updating", current.message if current.state == "updating" else "")
    if current.state in ("updating", "paused"):
        return Rollout("completed", "")
    return current

class ServiceReconciler(Reconciler):
    name = "services"

    def __init__(self, store: ObjectStore, services: Informer, tasks: Informer,
                 nodes: Informer, new_id: Callable[[], str] = _task_id,
                 events: EventRecorder | None = None) -> None:
        super().__init__()
        self.events = events
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

    def _announce(self, service: Service, before: Rollout, after: Rollout) -> None:
        if self.events is None or before.state == after.state or \
                after.state not in ROLLOUT_EVENTS:
            return
        reason, kind = ROLLOUT_EVENTS[after.state]
        self.events.record(InvolvedObject("Service", service.metadata.name,
                                          service.metadata.app),
                           reason, after.message, kind, source="rollout")  # type: ignore[arg-type]

    async def _roll_back(self, service: Service) -> str | None:
        """failure_action rollback: the previous revision's spec back into the App, as
        `skiff rollout undo` does; the app reconciler then rolls it out. Why not, if
        it cannot."""
        previous = service.status.revisions[-2]
        try:
            app: App = await self.store.get(APP, service.metadata.app or "")
            spec = app_view(app.spec, previous.spec)
        except (NotFound, NotInApp) as exc:
            return str(exc)
        rollback = service.spec.deploy.rollback_config
        if rollback is not None:
            # The way back goes by rollback_config: it rides on the restored spec as its
            # update_config (the next apply of the app's file sets its own again).
            spec = dataclasses.replace(spec, deploy=dataclasses.replace(
                spec.deploy, update_config=dataclasses.replace(
                    rollback, failure_action="pause")))
        services = {**app.spec.services, service.metadata.name: spec}
        meta = dataclasses.replace(app.metadata, generation=app.metadata.generation + 1)
        await self.store.update(dataclasses.replace(
            app, metadata=meta, spec=dataclasses.replace(app.spec, services=services)))
        return None

    async def reconcile(self, key: Any) -> None:
        app, name = key
        service: Service | None = self.services.get(f"{app}/{name}")
        tasks: list[Task] = self.tasks.by_index("service", key)
        if service is not None and service.spec.deploy.mode == "global":
            plan = plan_global(service, tasks, self.nodes.items(), self.new_id)
        else:
            if service is not None:
                revisions = with_revision(service, _now())
                if revisions is not None:  # a new spec: recorded first, then rolled out
                    state = Rollout("updating", "") if service.status.revisions else \
                        service.status.rollout
                    if service.status.rollout.state == "rolling back":
                        state = Rollout("rolled back", service.status.rollout.message)
                    status = dataclasses.replace(service.status, revisions=revisions,
                                                 rollout=state)
                    self._announce(service, service.status.rollout, state)
                    await self.store.update(dataclasses.replace(service, status=status))
                    return
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
        state = rollout_state(service, tasks)
        conf = service.spec.deploy.update_config
        if state.state == "paused" and not service.status.paused and conf is not None and \
                conf.failure_action == "rollback" and len(service.status.revisions) >= 2:
            # The state first: the App edit changes this Service's spec right after.
            marked = Rollout("rolling back", f"{state.message}; rolling back to revision "
                                             f"{service.status.revisions[-2].revision}")
            await self.store.update(dataclasses.replace(
                service, status=service_status(service, tasks, marked)))
            self._announce(service, service.status.rollout, marked)
            problem = await self._roll_back(service)
            if problem is None:
                return
            state = Rollout("paused", f"{state.message}; cannot roll back: {problem}")
        status = service_status(service, tasks, state)
        self._announce(service, service.status.rollout, state)
        if status != service.status:
            await self.store.update(dataclasses.replace(service, status=status))
