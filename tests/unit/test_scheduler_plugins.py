"""Each scheduler plugin alone: tables of (task, node, state) → status or score."""

from __future__ import annotations

import dataclasses

import pytest

from controller.scheduler.framework import FITS, Code, SchedulingState, Status, unschedulable
from controller.scheduler.plugins import (
    constraints,
    dependencies,
    max_per_node,
    ready,
    registry,
    resources,
    spread,
    spread_preference,
    volume_affinity,
)
from skiff.manifest.placement import parse_constraint
from skiff.models.objects import NodeResources, ObjectMeta, Volume, VolumeSpec
from tests.unit.factories import node, task_of
from tests.unit.scheduling import GIB, svc

# --- ready -----------------------------------------------------------------------------


@pytest.mark.parametrize("n, expected", [
    (node("a"), FITS),
    (node("a", ready=False), unschedulable("not ready")),
    (node("a", unschedulable=True), unschedulable("unschedulable")),
    (node("a", ready=False, unschedulable=True), unschedulable("not ready")),
])
def test_ready(n, expected):
    assert ready.Ready().filter(task_of(svc(), 1), n, SchedulingState([n])) == expected


def test_ready_refuses_a_draining_node():
    n = node("a")
    n.spec.drain = True
    assert ready.fits(n) == unschedulable("draining")


# --- resources -------------------------------------------------------------------------

@pytest.mark.parametrize("want, used, allocatable, expected", [
    ((0.5, GIB), (0.0, 0), NodeResources(1.0, 2 * GIB), FITS),
    ((0.5, GIB), (0.5, GIB), NodeResources(1.0, 2 * GIB), FITS),  # exactly full
    ((0.1, 0), (0.2, 0), NodeResources(0.3, 0), FITS),  # no float surprise
    ((0.0, GIB + 1), (0.0, GIB), NodeResources(1.0, 2 * GIB), unschedulable(
        "insufficient memory")),
    ((0.6, 0), (0.5, 0), NodeResources(1.0, 2 * GIB), unschedulable("insufficient cpu")),
    ((2.0, 4 * GIB), (0.0, 0), NodeResources(1.0, 2 * GIB), unschedulable(
        "insufficient cpu and memory")),
    ((0.0, GIB), (0.0, 0), NodeResources(0.0, 0), unschedulable("insufficient memory")),
])
def test_resources_fits(want, used, allocatable, expected):
    assert resources.fits(want, used, allocatable) == expected


def test_resources_counts_active_tasks_on_the_node_but_not_ended_ones():
    big = svc(memory=GIB)
    n = node("a", cpus=4, memory=2 * GIB)
    running = task_of(big, 1, node="a", state="running")
    failed = task_of(big, 2, node="a", state="failed")
    stopping = task_of(big, 3, node="a", state="running", desired="shutdown")
    plugin = resources.Resources()
    assert plugin.filter(task_of(big, 4), n, SchedulingState.build([n], [running, failed]
                                                                   )).fits
    # A task being stopped still holds its memory until it has stopped.
    assert plugin.filter(task_of(big, 4), n, SchedulingState.build(
        [n], [running, stopping])) == unschedulable("insufficient memory")
    # No reservation, no question asked.
    assert plugin.filter(task_of(svc(), 1), node("b"), SchedulingState([])).fits


# --- constraints -----------------------------------------------------------------------

LABELLED = node("n1", labels={"disk": "ssd", "zone": "a"})


@pytest.mark.parametrize("text, expected", [
    ("node.name==n1", True),
    ("node.name!=n1", False),
    ("node.hostname==n1", True),
    ("node.hostname!=n2", True),
    ("node.labels.disk==ssd", True),
    ("node.labels.disk==hdd", False),
    ("node.labels.disk!=hdd", True),
    ("node.labels.gpu==yes", False),  # a missing label equals nothing
    ("node.labels.gpu!=yes", True),  # and differs from everything
])
def test_constraint_holds(text, expected):
    assert constraints.holds(parse_constraint(text), LABELLED) is expected


def test_constraints_name_the_first_that_fails():
    task = task_of(svc(constraints=["node.labels.zone==a", "node.labels.disk==hdd",
                                    "node.name==x"]), 1)
    status = constraints.Constraints().filter(task, LABELLED, SchedulingState([LABELLED]))
    assert status == Status(Code.UNSCHEDULABLE, "constraint node.labels.disk==hdd")
    assert constraints.Constraints().filter(task_of(svc(), 1), LABELLED,
                                            SchedulingState([])).fits


# --- max_per_node ----------------------------------------------------------------------

@pytest.mark.parametrize("limit, count, expected", [
    (None, 50, FITS),
    (2, 0, FITS),
    (2, 1, FITS),
    (2, 2, unschedulable("max replicas per node (2)")),
    (1, 3, unschedulable("max replicas per node (1)")),
])
def test_max_per_node_fits(limit, count, expected):
    assert max_per_node.fits(limit, count) == expected


def test_max_per_node_counts_only_the_same_service_that_should_run():
    web, db = svc(max_per_node=1), svc("db")
    n = node("a")
    plugin = max_per_node.MaxPerNode()
    others = [task_of(db, 1, node="a"), task_of(web, 2, node="a", desired="shutdown",
                                                state="running")]
    assert plugin.filter(task_of(web, 1), n, SchedulingState.build([n], others)).fits
    mine = [task_of(web, 2, node="a", state="running")]
    assert not plugin.filter(task_of(web, 1), n, SchedulingState.build([n], mine)).fits


# --- volume_affinity -------------------------------------------------------------------

def test_volume_homes_come_from_volume_objects_then_the_oldest_bound_task():
    db = svc("db", volumes=["hello_data"])
    other_app = svc("db", app="other", volumes=["other_data"])
    tasks = [task_of(db, 1, node="n2", created="2026-01-02T00:00:00Z"),
             task_of(db, 2, node="n1", state="complete", created="2026-01-01T00:00:00Z"),
             task_of(db, 3),  # unbound: holds nothing
             task_of(other_app, 1, node="n3")]
    assert volume_affinity.volume_homes(tasks) == {"hello_data": "n1", "other_data": "n3"}
    claimed = Volume(metadata=ObjectMeta(name="other_data"), spec=VolumeSpec(node="n2"))
    unclaimed = Volume(metadata=ObjectMeta(name="hello_data"))
    assert volume_affinity.volume_homes(tasks, [claimed, unclaimed]) == {
        "hello_data": "n1", "other_data": "n2"}


@pytest.mark.parametrize("nodes, homes, on, expected", [
    ([node("n1"), node("n2")], {}, "n2", FITS),  # a new volume goes anywhere
    ([node("n1"), node("n2")], {"data": "n1"}, "n1", FITS),
    ([node("n1"), node("n2")], {"data": "n1"}, "n2",
     unschedulable("volume data lives on node n1")),
    ([node("n1"), node("n2")], {"other_data": "n1"}, "n2", FITS),  # another volume
])
def test_volume_affinity_filter(nodes, homes, on, expected):
    task = task_of(svc("db", volumes=["data"]), 1)
    state = SchedulingState(nodes, homes)
    plugin = volume_affinity.VolumeAffinity()
    assert plugin.prefilter(task, state).fits
    assert plugin.filter(task, state.nodes[on], state) == expected


@pytest.mark.parametrize("nodes, expected", [
    ([node("n1", ready=False), node("n2")],
     "volume data lives on node n1, which is not ready"),
    ([node("n2")], "volume data lives on node n1, which is no longer in the cluster"),
])
def test_volume_affinity_prefilter_when_the_home_cannot_run_it(nodes, expected):
    task = task_of(svc("db", volumes=["data"]), 1)
    state = SchedulingState(nodes, {"data": "n1"})
    assert volume_affinity.VolumeAffinity().prefilter(task, state) == unschedulable(expected)


# --- spread ----------------------------------------------------------------------------

def test_spread_prefers_fewer_of_the_service_then_fewer_tasks():
    assert spread.score(0, 10) > spread.score(1, 0)
    assert spread.score(1, 1) > spread.score(1, 2)
    web, db = svc(), svc("db")
    nodes = [node("a"), node("b"), node("c")]
    state = SchedulingState.build(nodes, [
        task_of(web, 1, node="a"), task_of(db, 1, node="b"), task_of(db, 2, node="b")])
    plugin = spread.Spread()
    scores = {n.metadata.name: plugin.score(task_of(web, 2), n, state) for n in nodes}
    assert sorted(scores, key=lambda k: -scores[k]) == ["c", "b", "a"]


# --- spread_preference -----------------------------------------------------------------

def test_spread_preference_balances_over_label_values_not_nodes():
    web = svc(spread=["node.labels.zone"])
    nodes = [node("a1", labels={"zone": "a"}), node("a2", labels={"zone": "a"}),
             node("b1", labels={"zone": "b"}), node("x")]  # x: no zone, a group of its own
    state = SchedulingState.build(nodes, [task_of(web, 1, node="a1")])
    plugin = spread_preference.SpreadPreference()
    scores = {n.metadata.name: plugin.score(task_of(web, 2), n, state) for n in nodes}
    assert scores["a2"] == scores["a1"] < scores["b1"] == scores["x"]
    # Without preferences every node scores the same.
    assert plugin.score(task_of(svc(), 1), nodes[0], state) == 0.0


def test_spread_preference_levels_do_not_mix():
    # Level 1 decides; level 2 only orders nodes within equal level-1 groups.
    assert spread_preference.score([0, 5], 5) > spread_preference.score([1, 0], 5)
    assert spread_preference.score([1, 0], 5) > spread_preference.score([1, 1], 5)


# --- registry --------------------------------------------------------------------------

def test_registry_builds_the_default_profile_in_order():
    plugins = registry.build()
    assert [p.name for p in plugins] == list(registry.DEFAULT_PROFILE)
    for name, factory in registry.REGISTRY.items():
        assert factory().name == name


def test_registry_refuses_unknown_names():
    with pytest.raises(ValueError, match=r"unknown scheduler plugin.*nope.*known: constraints"):
        registry.build(["ready", "nope"])


# --- dependencies (depends_on) ---------------------------------------------------------

def _with_deps(name: str, deps: dict[str, str]):  # type: ignore[no-untyped-def]
    service = svc(name)
    spec = dataclasses.replace(service.spec, depends_on=deps)
    return dataclasses.replace(service, spec=spec)


def test_a_task_waits_until_its_dependencies_meet_their_condition():
    web = _with_deps("web", {"db": "service_started",
                             "migrate": "service_completed_successfully"})
    db, migrate = svc("db"), svc("migrate")
    pending = task_of(web, 1)
    plugin = dependencies.Dependencies()
    nodes = [node("n1")]

    def status(*others):  # type: ignore[no-untyped-def]
        return plugin.prefilter(pending, SchedulingState.build(nodes, [pending, *others]))

    assert status() == unschedulable("waiting for service db (started)")
    assert status(task_of(db, 1, node="n1", state="starting")) == \
        unschedulable("waiting for service db (started)")
    running_db = task_of(db, 1, node="n1", state="running")
    assert status(running_db) == \
        unschedulable("waiting for service migrate (completed_successfully)")
    failed = dataclasses.replace(task_of(migrate, 1, node="n1", state="complete"),
                                 status=dataclasses.replace(
                                     task_of(migrate, 1).status, state="complete",
                                     exit_code=1))
    assert not status(running_db, failed).fits
    done = dataclasses.replace(failed, status=dataclasses.replace(failed.status, exit_code=0))
    assert status(running_db, done) == FITS
    other_app = task_of(svc("db", app="other"), 1, node="n1", state="running")
    assert not status(other_app, done).fits  # another app's db is not ours


def test_service_healthy_waits_for_a_healthy_replica_or_one_without_a_check():
    web = _with_deps("web", {"db": "service_healthy"})
    pending = task_of(web, 1)
    db = task_of(svc("db"), 1, node="n1", state="running")
    plugin = dependencies.Dependencies()

    def with_health(health):  # type: ignore[no-untyped-def]
        dep = dataclasses.replace(db, status=dataclasses.replace(db.status, health=health))
        return plugin.prefilter(pending, SchedulingState.build([node("n1")], [pending, dep]))

    assert with_health("starting") == unschedulable("waiting for service db (healthy)")
    assert with_health("unhealthy") == unschedulable("waiting for service db (healthy)")
    assert with_health("healthy") == FITS
    assert with_health(None) == FITS  # no check anywhere: running is all there is
