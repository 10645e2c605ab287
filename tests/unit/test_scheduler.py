"""schedule(): the default profile over (pending tasks, nodes, active tasks) → bindings."""

from __future__ import annotations

from collections import Counter

from controller.scheduler.framework import (
    FITS,
    Binding,
    SchedulingState,
    Status,
    schedule,
    unschedulable_reason,
)
from controller.scheduler.plugins import registry
from controller.scheduler.plugins.volume_affinity import volume_homes
from skiff.models.objects import Node, Task
from tests.unit.factories import node, task_of
from tests.unit.scheduling import GIB, svc


def run(pending: list[Task], nodes: list[Node], active: list[Task] | None = None
        ) -> list[Binding]:
    active = active or []
    return schedule(pending, nodes, active, registry.build(), volume_homes(active))


def per_node(bindings: list[Binding]) -> dict[str | None, int]:
    return dict(Counter(b.node for b in bindings))


def three(**labels: dict[str, str]) -> list[Node]:
    return [node(n, labels=labels.get(n), cpus=2, memory=4 * GIB) for n in ("n1", "n2", "n3")]


def test_six_replicas_over_three_nodes_spread_two_each():
    web = svc(replicas=6)
    out = run([task_of(web, s) for s in range(1, 7)], three())
    assert per_node(out) == {"n1": 2, "n2": 2, "n3": 2}
    assert all(b.reason == "" for b in out)


def test_spread_counts_tasks_already_running_and_other_services():
    web, db = svc(), svc("db")
    active = [task_of(web, 1, node="n1", state="running"),
              task_of(db, 1, node="n2", state="running")]
    out = run([task_of(web, 2), task_of(web, 3)], three(), active)
    # n2 and n3 have no web; n3 has fewer tasks in all, so it goes first.
    assert [b.node for b in out] == ["n3", "n2"]


def test_reservations_larger_than_any_node_stay_pending_with_the_reason():
    huge = svc(memory=8 * GIB)
    out = run([task_of(huge, 1)], three())
    assert out == [Binding(out[0].task, None,
                           "0/3 nodes available: 3 insufficient memory")]


def test_reservations_fill_nodes_in_the_same_pass():
    half = svc(replicas=5, cpus=1.0)  # two fit on each 2-cpu node
    out = run([task_of(half, s) for s in range(1, 6)], three()[:2])
    assert per_node(out) == {"n1": 2, "n2": 2, None: 1}
    assert out[-1].reason == "0/2 nodes available: 2 insufficient cpu"


def test_constraint_that_fails_on_two_of_three_nodes():
    web = svc(constraints=["node.labels.disk==ssd"])
    nodes = three(n2={"disk": "ssd"}, n3={"disk": "hdd"})
    out = run([task_of(web, s) for s in (1, 2, 3)], nodes)
    assert per_node(out) == {"n2": 3}
    nodes[1].status.ready = False
    out = run([task_of(web, 1)], nodes)
    assert out[0].reason == ("0/3 nodes available: 2 constraint node.labels.disk==ssd, "
                             "1 not ready")


def test_max_replicas_per_node():
    web = svc(replicas=4, max_per_node=1)
    out = run([task_of(web, s) for s in range(1, 5)], three())
    assert per_node(out) == {"n1": 1, "n2": 1, "n3": 1, None: 1}
    assert out[-1].reason == "0/3 nodes available: 3 max replicas per node (1)"


def test_spread_preference_by_zone_balances_zones_first():
    web = svc(replicas=4, spread=["node.labels.zone"])
    nodes = [node("a1", labels={"zone": "a"}), node("a2", labels={"zone": "a"}),
             node("b1", labels={"zone": "b"})]
    out = run([task_of(web, s) for s in range(1, 5)], nodes)
    assert per_node(out) == {"a1": 1, "a2": 1, "b1": 2}


def test_volume_affinity_follows_the_volume():
    db = svc("db", replicas=2, volumes=["data"])
    backup = svc("backup", volumes=["data"])
    active = [task_of(db, 1, node="n3", state="running")]
    out = run([task_of(db, 2), task_of(backup, 1)], three(), active)
    assert {b.node for b in out} == {"n3"}


def test_a_new_volume_pins_the_tasks_placed_after_it_in_the_same_pass():
    db = svc("db", replicas=3, volumes=["data"])
    out = run([task_of(db, s) for s in (1, 2, 3)], three())
    assert per_node(out) == {"n1": 3}


def test_volume_on_a_node_that_is_not_ready_keeps_the_task_pending():
    db = svc("db", volumes=["data"])
    nodes = three()
    nodes[2].status.ready = False
    active = [task_of(db, 1, node="n3", state="failed", desired="shutdown")]
    out = run([task_of(db, 2)], nodes, active)
    assert out[0].node is None
    assert out[0].reason == "volume data lives on node n3, which is not ready"


def test_reason_format_counts_most_common_first_then_alphabetical():
    causes = Counter({"not ready": 1, "insufficient memory": 2, "constraint x==y": 1})
    assert unschedulable_reason(4, causes) == (
        "0/4 nodes available: 2 insufficient memory, 1 constraint x==y, 1 not ready")
    assert unschedulable_reason(0, Counter()) == (
        "0/0 nodes available: no node has joined the cluster")


def test_reason_counts_not_ready_and_unschedulable_nodes():
    nodes = [node("a", ready=False), node("b", ready=False), node("c", unschedulable=True)]
    out = run([task_of(svc(), 1)], nodes)
    assert out[0].reason == "0/3 nodes available: 2 not ready, 1 unschedulable"


def test_no_nodes_keeps_tasks_pending_with_reason():
    out = run([task_of(svc(), 1)], [])
    assert out[0].node is None
    assert out[0].reason == "0/0 nodes available: no node has joined the cluster"


def test_bound_stopping_and_global_tasks_are_skipped():
    web = svc()
    bound = task_of(web, 1, node="n1")
    stopping = task_of(web, 2, desired="shutdown")
    global_ = task_of(svc("agent", mode="global"), 1)
    assert run([bound, stopping, global_], three()) == []


def test_a_failing_plugin_is_an_error_reason_not_a_crash():
    class Broken:
        name = "broken"

        def filter(self, task: Task, node: Node, state: SchedulingState) -> Status:
            if node.metadata.name == "n1":
                raise RuntimeError("boom")
            return FITS

    out = schedule([task_of(svc(), 1)], three()[:1], [], [Broken()])
    assert out[0].reason == "0/1 nodes available: 1 error in broken: boom"
    out = schedule([task_of(svc(), 1)], three()[:2], [], [Broken()])
    assert out[0].node == "n2"


def test_schedule_does_not_change_the_volume_map_it_was_given():
    homes: dict[str, str] = {}
    schedule([task_of(svc("db", volumes=["data"]), 1)], three(), [], registry.build(), homes)
    assert homes == {}


def test_round_robin_baseline_rotates_over_ready_nodes():
    from controller.scheduler.round_robin import round_robin
    from tests.unit.factories import node, service, task_of
    svc = service()
    nodes = [node("b"), node("a"), node("c", ready=False)]
    first, nxt = round_robin([task_of(svc, s) for s in (1, 2, 3)], nodes)
    assert [b.node for b in first] == ["a", "b", "a"] and nxt == 3
    second, _ = round_robin([task_of(svc, 4)], nodes, nxt)
    assert [b.node for b in second] == ["b"]
    none, _ = round_robin([task_of(svc, 5)], [node("c", ready=False)])
    assert none[0].node is None
