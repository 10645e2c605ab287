"""Node lifecycle: silence beyond the grace period makes a node Down and its tasks lost."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from controller.reconcilers.node_plan import plan_nodes
from skiff.models.objects import NodeStatus
from tests.unit.factories import node, service, task_of

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


def heard(n, seconds_ago: float | None, ready: bool = True):
    stamp = None if seconds_ago is None else \
        (NOW - timedelta(seconds=seconds_ago)).isoformat().replace("+00:00", "Z")
    return dataclasses.replace(n, status=NodeStatus(ready=ready, last_heartbeat=stamp))


def test_fresh_nodes_and_their_tasks_are_left_alone():
    svc = service()
    plan = plan_nodes([heard(node("a"), 3)], [task_of(svc, 1, node="a", state="running")],
                      NOW, grace=10)
    assert plan.empty


def test_silent_node_goes_down_and_its_running_tasks_are_lost():
    svc = service()
    tasks = [task_of(svc, 1, node="a", state="running"),
             task_of(svc, 2, node="b", state="running"),
             task_of(svc, 3, node="a", state="shutdown", desired="shutdown")]
    plan = plan_nodes([heard(node("a"), 11), heard(node("b"), 1)], tasks, NOW, grace=10)
    assert [n.metadata.name for n in plan.down] == ["a"]
    assert plan.down[0].status.ready is False
    assert "no heartbeat within 10s" in plan.down[0].status.message
    assert [t.spec.slot for t in plan.lost] == [1]
    lost = plan.lost[0]
    assert (lost.spec.desired_state, lost.status.state) == ("shutdown", "orphaned")
    assert lost.status.message == "lost: node a is down"


def test_down_node_tasks_are_lost_and_removed_node_tasks_too():
    svc = service()
    tasks = [task_of(svc, 1, node="a", state="running"),
             task_of(svc, 2, node="gone", state="running"),
             task_of(svc, 3)]  # unbound: the scheduler's business
    plan = plan_nodes([heard(node("a"), 50, ready=False)], tasks, NOW, grace=10)
    assert plan.down == []  # already down: no write
    assert sorted(t.status.message for t in plan.lost) == [
        "lost: node a is down", "lost: node gone was removed"]


def test_a_node_that_never_heartbeated_is_down():
    plan = plan_nodes([heard(node("a"), None)], [], NOW)
    assert plan.down and "last heard never" in plan.down[0].status.message
