"""plan_global: a global service's tasks, one per eligible node, made already bound."""

from __future__ import annotations

import dataclasses

from controller.reconcilers.replicas import TASK_HISTORY_PER_SLOT, eligible_nodes, plan_global
from skiff.models.objects import Service
from tests.unit.factories import ids, node, task_of
from tests.unit.scheduling import svc


def agent(**kw: object) -> Service:
    return svc("agent", mode="global", **kw)  # type: ignore[arg-type]


def placed(tasks):
    return sorted((t.spec.node_name, t.spec.slot) for t in tasks)


def test_one_bound_task_per_ready_schedulable_node():
    nodes = [node("n1"), node("n2"), node("n3", ready=False), node("n4", unschedulable=True)]
    plan = plan_global(agent(), [], nodes, ids)
    assert placed(plan.create) == [("n1", 1), ("n2", 2)]
    assert not plan.shutdown and not plan.delete
    t = plan.create[0]
    assert t.status.state == "assigned" and t.status.message == ""
    assert t.metadata.name.startswith("agent.1.")


def test_constraints_choose_the_nodes():
    nodes = [node("n1", labels={"edge": "1"}), node("n2"), node("n3", labels={"edge": "1"})]
    spec = agent(constraints=["node.labels.edge==1"]).spec
    assert eligible_nodes(spec, nodes) == ["n1", "n3"]
    plan = plan_global(agent(constraints=["node.labels.edge==1"]), [], nodes, ids)
    assert [t.spec.node_name for t in plan.create] == ["n1", "n3"]


def test_nothing_to_do_once_applied():
    nodes = [node("n1"), node("n2")]
    first = plan_global(agent(), [], nodes, ids)
    assert plan_global(agent(), first.create, nodes, ids).empty


def test_a_new_node_gets_a_task_with_the_lowest_free_slot():
    svc_ = agent()
    tasks = [task_of(svc_, 1, node="n1", state="running"),
             task_of(svc_, 3, node="n3", state="running")]
    plan = plan_global(svc_, tasks, [node("n1"), node("n2"), node("n3")], ids)
    assert placed(plan.create) == [("n2", 2)]


def test_tasks_on_gone_or_ineligible_nodes_stop():
    svc_ = agent(constraints=["node.labels.edge==1"])
    tasks = [task_of(svc_, 1, node="n1", state="running"),  # label removed
             task_of(svc_, 2, node="n2", state="running"),  # node gone
             task_of(svc_, 3, node="n3", state="running"),  # node not ready
             task_of(svc_, 4, node="n4", state="running"),  # stays
             task_of(svc_, 5, node="n5", state="failed")]  # gone, and ended: delete
    nodes = [node("n1"), node("n3", ready=False, labels={"edge": "1"}),
             node("n4", labels={"edge": "1"})]
    plan = plan_global(svc_, tasks, nodes, ids)
    assert placed(plan.shutdown) == [("n1", 1), ("n2", 2), ("n3", 3)]
    assert all(t.spec.desired_state == "shutdown" for t in plan.shutdown)
    assert placed(plan.delete) == [("n5", 5)]
    assert not plan.create


def test_changed_spec_replaces_each_task_in_its_slot_on_its_node():
    old = agent()
    tasks = [task_of(old, 1, node="n1", state="running"),
             task_of(old, 2, node="n2", state="running")]
    new = dataclasses.replace(old, spec=dataclasses.replace(old.spec, image="busybox:2"))
    plan = plan_global(new, tasks, [node("n1"), node("n2")], ids)
    assert placed(plan.shutdown) == [("n1", 1), ("n2", 2)]
    assert placed(plan.create) == [("n1", 1), ("n2", 2)]
    assert all(t.spec.container.image == "busybox:2" for t in plan.create)


def test_extra_tasks_on_a_node_keep_only_the_newest():
    svc_ = agent()
    a = task_of(svc_, 1, node="n1", state="running", created="2026-01-01T00:00:01Z")
    b = task_of(svc_, 2, node="n1", state="running", created="2026-01-01T00:00:02Z")
    plan = plan_global(svc_, [a, b], [node("n1")], ids)
    assert [t.metadata.name for t in plan.shutdown] == [a.metadata.name]
    assert not plan.create


def test_replicated_tasks_of_a_service_turned_global_are_reused_or_removed():
    replicated = svc("agent", replicas=3)
    tasks = [task_of(replicated, 1, node="n1", state="running"),
             task_of(replicated, 2, node="n1", state="running"),
             task_of(replicated, 3)]  # never bound
    as_global = dataclasses.replace(replicated, spec=agent().spec)
    plan = plan_global(as_global, tasks, [node("n1"), node("n2")], ids)
    assert placed(plan.shutdown) == [("n1", 1)]  # n1 keeps the newest of its two
    assert placed(plan.delete) == [(None, 3)]
    assert placed(plan.create) == [("n2", 1)]


def test_tasks_of_an_earlier_service_and_of_a_deleted_one():
    svc_ = agent()
    stale = task_of(_other_uid(svc_), 1, node="n1", state="running")
    plan = plan_global(svc_, [stale], [node("n1")], ids)
    assert placed(plan.shutdown) == [("n1", 1)] and placed(plan.create) == [("n1", 1)]
    gone = plan_global(None, [task_of(svc_, 1, node="n1", state="running")], [], ids)
    assert placed(gone.shutdown) == [("n1", 1)]


def _other_uid(service: Service) -> Service:
    return dataclasses.replace(service, metadata=dataclasses.replace(service.metadata,
                                                                     uid="older-uid"))


def test_ended_history_per_node_is_bounded():
    svc_ = agent()
    ended = [task_of(svc_, 1, node="n1", state="shutdown", desired="shutdown",
                     created=f"2026-01-01T00:00:0{i}Z") for i in range(4)]
    current = task_of(svc_, 1, node="n1", state="running", created="2026-01-01T00:01:00Z")
    plan = plan_global(svc_, [*ended, current], [node("n1")], ids)
    assert {t.metadata.name for t in plan.delete} == {
        t.metadata.name for t in ended[:4 - TASK_HISTORY_PER_SLOT]}
