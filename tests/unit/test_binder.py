"""The simplest-rule binder: tables of (tasks, nodes) → binding or reason."""

from __future__ import annotations

from controller.scheduler.binder import plan_bindings, unschedulable_reason
from tests.unit.factories import node, service, task_of


def test_no_nodes_keeps_tasks_pending_with_reason():
    svc = service()
    out = plan_bindings([task_of(svc, 1)], [], [])
    assert out[0].node is None
    assert out[0].reason == "0/0 nodes available: no node has joined the cluster"


def test_reason_counts_each_cause():
    nodes = [node("a", ready=False), node("b", ready=False), node("c", unschedulable=True)]
    assert unschedulable_reason(nodes) == "0/3 nodes available: 2 not ready, 1 unschedulable"


def test_spreads_over_ready_nodes_by_load():
    svc = service()
    busy = task_of(svc, 9, node="a", state="running")
    pending = [task_of(svc, s) for s in (1, 2, 3)]
    out = plan_bindings(pending, [node("a"), node("b"), node("c", ready=False)], [busy])
    assert sorted(b.node for b in out) == ["a", "b", "b"]


def test_bound_or_stopping_tasks_are_skipped():
    svc = service()
    bound = task_of(svc, 1, node="a")
    stopping = task_of(svc, 2, desired="shutdown")
    assert plan_bindings([bound, stopping], [node("a")], []) == []
