"""The replica reconciler's pure plan: tables of (service, tasks) → actions."""

from __future__ import annotations

import dataclasses

from controller.reconcilers.replicas import TASK_HISTORY_PER_SLOT, plan_replicas
from skiff.models.appspec import Deploy
from tests.unit.factories import ids, service, spec, task_of
from tests.unit.scheduling import svc


def _slots(tasks):
    return sorted(t.spec.slot for t in tasks)


def test_creates_one_task_per_replica_when_none_exist():
    svc = service()
    plan = plan_replicas(svc, [], ids)
    assert _slots(plan.create) == [1, 2, 3]
    assert not plan.shutdown and not plan.delete
    t = plan.create[0]
    assert t.metadata.name.startswith("web.1.")
    assert t.metadata.app == "hello" and t.metadata.owner_uid == svc.metadata.uid
    assert t.spec.spec_hash == svc.spec.container_hash()
    assert t.spec.container == svc.spec
    assert t.status.state == "pending"


def test_nothing_to_do_when_tasks_match():
    svc = service()
    tasks = [task_of(svc, s, node="n1", state="running") for s in (1, 2, 3)]
    assert plan_replicas(svc, tasks, ids).empty


def test_scale_up_adds_only_missing_slots():
    svc = service(service_spec=spec(replicas=5))
    tasks = [task_of(svc, s, node="n1", state="running") for s in (1, 2, 3)]
    plan = plan_replicas(svc, tasks, ids)
    assert _slots(plan.create) == [4, 5]
    assert not plan.shutdown and not plan.delete


def test_scale_down_deletes_unbound_and_stops_bound_tasks():
    svc = service(service_spec=spec(replicas=1))
    tasks = [task_of(svc, 1, node="n1", state="running"),
             task_of(svc, 2),  # never scheduled: just delete
             task_of(svc, 3, node="n1", state="running")]  # running: stop first
    plan = plan_replicas(svc, tasks, ids)
    assert not plan.create
    assert _slots(plan.delete) == [2]
    assert _slots(plan.shutdown) == [3]
    assert plan.shutdown[0].spec.desired_state == "shutdown"


def test_changed_spec_replaces_each_task():
    old = service()
    tasks = [task_of(old, s, node="n1", state="running") for s in (1, 2, 3)]
    new = dataclasses.replace(old, spec=spec(image="busybox:2"))
    plan = plan_replicas(new, tasks, ids)
    assert _slots(plan.create) == [1, 2, 3]
    assert _slots(plan.shutdown) == [1, 2, 3]
    assert all(t.spec.container.image == "busybox:2" for t in plan.create)


def test_replica_count_alone_never_replaces_a_task():
    svc = service()
    tasks = [task_of(svc, s, node="n1", state="running") for s in (1, 2, 3)]
    scaled = dataclasses.replace(svc, spec=dataclasses.replace(svc.spec, deploy=Deploy(4)))
    plan = plan_replicas(scaled, tasks, ids)
    assert _slots(plan.create) == [4] and not plan.shutdown and not plan.delete


def test_service_gone_removes_all_its_tasks():
    svc = service()
    tasks = [task_of(svc, 1), task_of(svc, 2, node="n1", state="running"),
             task_of(svc, 3, node="n1", state="failed")]
    plan = plan_replicas(None, tasks, ids)
    assert _slots(plan.delete) == [1, 3]
    assert _slots(plan.shutdown) == [2]
    assert not plan.create


def test_already_stopping_task_is_left_to_the_agent():
    svc = service(service_spec=spec(replicas=0))
    t = task_of(svc, 1, node="n1", state="running", desired="shutdown")
    assert plan_replicas(svc, [t], ids).empty


def test_tasks_of_an_earlier_service_with_the_same_name_are_removed():
    svc = service(uid="new-uid")
    stale = task_of(service(uid="old-uid"), 1)
    plan = plan_replicas(svc, [stale], ids)
    assert [t.metadata.name for t in plan.delete] == [stale.metadata.name]
    assert _slots(plan.create) == [1, 2, 3]


def test_ended_history_per_slot_is_bounded():
    svc = service(service_spec=spec(replicas=1))
    ended = [task_of(svc, 1, node="n1", state="shutdown", desired="shutdown",
                     created=f"2026-01-01T00:00:0{i}Z") for i in range(5)]
    current = task_of(svc, 1, node="n1", state="running", created="2026-01-01T00:01:00Z")
    plan = plan_replicas(svc, [*ended, current], ids)
    assert len(plan.delete) == 5 - TASK_HISTORY_PER_SLOT
    # The oldest go first.
    assert {t.metadata.name for t in plan.delete} == {t.metadata.name for t in ended[:3]}


def test_two_running_tasks_in_one_slot_keep_only_one():
    svc = service(service_spec=spec(replicas=1))
    a = task_of(svc, 1, node="n1", state="running", created="2026-01-01T00:00:01Z")
    b = task_of(svc, 1, node="n2", state="running", created="2026-01-01T00:00:02Z")
    plan = plan_replicas(svc, [a, b], ids)
    assert [t.metadata.name for t in plan.shutdown] == [a.metadata.name]
    assert not plan.create


def test_plan_is_idempotent_once_applied():
    svc = service()
    first = plan_replicas(svc, [], ids)
    assert plan_replicas(svc, first.create, ids).empty


def test_pending_task_with_outdated_placement_is_replaced_but_a_bound_one_is_not():
    old = svc(replicas=2, constraints=["node.labels.disk==ssd"])
    pending = task_of(old, 1)
    running = task_of(old, 2, node="n1", state="running")
    new = svc(replicas=2, constraints=["node.labels.disk==hdd"])
    assert new.spec.container_hash() == old.spec.container_hash()
    plan = plan_replicas(new, [pending, running], ids)
    assert [t.metadata.name for t in plan.delete] == [pending.metadata.name]
    assert _slots(plan.create) == [1]
    assert plan.create[0].spec.container.deploy.placement == new.spec.deploy.placement
    assert not plan.shutdown


def test_drain_starts_a_replacement_before_stopping_the_old_one():
    svc = service(service_spec=spec(replicas=2))
    a = task_of(svc, 1, node="n1", state="running")
    b = task_of(svc, 2, node="n2", state="running")
    draining = frozenset({"n1"})
    plan = plan_replicas(svc, [a, b], ids, draining)
    assert [t.spec.slot for t in plan.create] == [1]  # the replacement, unbound
    assert not plan.shutdown and not plan.delete  # n1's replica keeps running for now

    replacement = task_of(svc, 1, node="n2", state="starting",
                          created="2026-01-01T00:00:05Z")
    assert plan_replicas(svc, [a, b, replacement], ids, draining).empty  # still waiting

    running = dataclasses.replace(replacement, status=dataclasses.replace(
        replacement.status, state="running"))
    plan = plan_replicas(svc, [a, b, running], ids, draining)
    assert [t.metadata.name for t in plan.shutdown] == [a.metadata.name]
    assert not plan.create


def test_drain_moves_one_slot_at_a_time():
    svc = service(service_spec=spec(replicas=3))
    tasks = [task_of(svc, s, node="n1", state="running") for s in (1, 2, 3)]
    plan = plan_replicas(svc, tasks, ids, frozenset({"n1"}))
    assert len(plan.create) == 1 and not plan.shutdown
    moving = dataclasses.replace(plan.create[0], spec=dataclasses.replace(
        plan.create[0].spec, node_name="n2"))
    assert plan_replicas(svc, [*tasks, moving], ids, frozenset({"n1"})).empty
