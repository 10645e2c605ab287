"""Rolling updates (deploy.update_config) in the pure replica plan: how many slots are
replaced at a time, start-first against stop-first, monitor, delay, and a failed new
replica pausing the update."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from controller.reconcilers.replicas import plan_replicas, rolling
from skiff.models.appspec import Deploy, ServiceSpec, UpdateConfig
from skiff.models.objects import Service, Task
from tests.unit.factories import ids, service, task_of

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def svc(image: str, **conf: object) -> Service:
    deploy = Deploy(replicas=4, update_config=UpdateConfig(**conf))  # type: ignore[arg-type]
    return service(service_spec=ServiceSpec(image=image, deploy=deploy))


def running(s: Service, slot: int, started: timedelta = timedelta(minutes=5),
            **status: object) -> Task:
    t = task_of(s, slot, node="n1", state="running")
    stamp = (NOW - started).isoformat().replace("+00:00", "Z")
    return dataclasses.replace(t, status=dataclasses.replace(
        t.status, started_at=stamp, **status))  # type: ignore[arg-type]


def stopped(t: Task) -> Task:
    return dataclasses.replace(t, spec=dataclasses.replace(t.spec, desired_state="shutdown"),
                               status=dataclasses.replace(t.status, state="shutdown"))


OLD = svc("app:1")


def plan(new: Service, tasks: list[Task]):  # type: ignore[no-untyped-def]
    return plan_replicas(new, tasks, ids, now=NOW)


def test_stop_first_replaces_parallelism_slots_at_a_time() -> None:
    new = svc("app:2", parallelism=2)
    old = [running(OLD, slot) for slot in range(1, 5)]
    first = plan(new, old)
    assert sorted(t.spec.slot for t in first.create) == [1, 2]
    assert sorted(t.spec.slot for t in first.shutdown) == [1, 2]
    assert rolling(new, old)
    # Slots 1-2 in flight (not yet running): nothing more starts.
    in_flight = [stopped(old[0]), stopped(old[1]), *first.create, old[2], old[3]]
    assert plan(new, in_flight).empty
    # Running, but for less than monitor (5 s): still in flight.
    young = [running(new, t.spec.slot, timedelta(seconds=2)) for t in first.create]
    assert plan(new, [stopped(old[0]), stopped(old[1]), *young, old[2], old[3]]).empty
    settled = [running(new, t.spec.slot, timedelta(seconds=6)) for t in first.create]
    second = plan(new, [stopped(old[0]), stopped(old[1]), *settled, old[2], old[3]])
    assert sorted(t.spec.slot for t in second.create) == [3, 4]


def test_start_first_keeps_the_old_replica_until_the_new_one_runs() -> None:
    new = svc("app:2", parallelism=1, order="start-first")
    old = [running(OLD, slot) for slot in range(1, 5)]
    first = plan(new, old)
    assert [t.spec.slot for t in first.create] == [1] and first.shutdown == []
    starting = plan(new, [*old, *first.create])
    assert starting.empty  # slot 1: the new one does not run yet, the old one stays
    up = running(new, 1, timedelta(seconds=1))
    swap = plan(new, [*old, up])
    assert [t.metadata.name for t in swap.shutdown] == [old[0].metadata.name]
    assert swap.create == []  # slot 2 waits for slot 1's monitor


def test_delay_waits_after_a_batch_finishes() -> None:
    new = svc("app:2", parallelism=1, delay=10.0, monitor=5.0)
    old = [running(OLD, slot) for slot in range(1, 5)]
    done = running(new, 1, timedelta(seconds=8))  # finished 3 s ago: wait 7 more
    assert plan(new, [stopped(old[0]), done, *old[1:]]).empty
    later = running(new, 1, timedelta(seconds=16))  # finished 11 s ago
    assert [t.spec.slot for t in plan(new, [stopped(old[0]), later, *old[1:]]).create] == [2]


def test_a_failing_new_replica_pauses_the_update_unless_continue() -> None:
    old = [running(OLD, slot) for slot in range(1, 5)]
    for new, expect in ((svc("app:2", parallelism=1), []),
                        (svc("app:2", parallelism=1, failure_action="continue"), [2])):
        crashing = running(new, 1, timedelta(seconds=20), restarts=2)
        result = plan(new, [stopped(old[0]), crashing, *old[1:]])
        assert [t.spec.slot for t in result.create] == expect


def test_parallelism_zero_and_no_update_config_replace_everything_at_once() -> None:
    old = [running(OLD, slot) for slot in range(1, 5)]
    for new in (svc("app:2", parallelism=0),
                service(service_spec=ServiceSpec(image="app:2", deploy=Deploy(replicas=4)))):
        assert sorted(t.spec.slot for t in plan(new, old).create) == [1, 2, 3, 4]
    assert not rolling(service(service_spec=ServiceSpec(image="app:2",
                                                        deploy=Deploy(replicas=4))), old)


def test_changing_update_config_alone_restarts_nothing() -> None:
    a, b = svc("app:1", parallelism=1), svc("app:1", parallelism=3, order="start-first")
    assert a.spec.container_hash() == b.spec.container_hash()
    assert plan(b, [running(a, slot) for slot in range(1, 5)]).empty


def test_update_config_round_trips_through_what_the_cli_sends() -> None:
    from skiff.manifest import load_document, load_text, to_compose
    text = ("name: x\nservices:\n  web:\n    image: busybox\n    deploy:\n"
            "      update_config: {parallelism: 2, delay: 5s, order: start-first, "
            "monitor: 1m, max_failure_ratio: 0}\n")
    app = load_text(text, "c.yml", None, environ={}).app
    assert app.services["web"].deploy.update_config == UpdateConfig(
        parallelism=2, delay=5.0, order="start-first", monitor=60.0)
    assert load_document(to_compose(app)).app == app


def test_each_new_spec_becomes_a_revision_and_only_the_last_few_are_kept() -> None:
    from controller.reconcilers.status import REVISIONS_KEPT, with_revision
    s = svc("app:1")
    first = with_revision(s, "t1")
    assert first is not None and [r.revision for r in first] == [1]
    s = dataclasses.replace(s, status=dataclasses.replace(s.status, revisions=first))
    assert with_revision(s, "t2") is None  # the same spec: nothing new
    for n in range(2, REVISIONS_KEPT + 3):
        s = dataclasses.replace(s, spec=svc(f"app:{n}").spec)
        revs = with_revision(s, f"t{n}")
        assert revs is not None
        s = dataclasses.replace(s, status=dataclasses.replace(s.status, revisions=revs))
    assert [r.revision for r in s.status.revisions] == list(range(3, REVISIONS_KEPT + 3))
    assert s.status.revisions[-1].spec.image == f"app:{REVISIONS_KEPT + 2}"


def test_rollout_state_follows_the_replicas() -> None:
    from controller.reconcilers.services import rollout_state
    from skiff.models.objects import Rollout
    new = svc("app:2", parallelism=1)
    old = [running(OLD, slot) for slot in range(1, 5)]
    assert rollout_state(new, old).state == "updating"
    crashing = running(new, 1, timedelta(seconds=20), restarts=1, exit_code=3)
    paused = rollout_state(new, [stopped(old[0]), crashing, *old[1:]])
    assert paused.state == "paused" and "exit code 3" in paused.message
    done = [running(new, slot) for slot in range(1, 5)]
    updating = dataclasses.replace(new, status=dataclasses.replace(
        new.status, rollout=Rollout("updating")))
    assert rollout_state(updating, done).state == "completed"
    back = dataclasses.replace(new, status=dataclasses.replace(
        new.status, rollout=Rollout("rolled back", "why")))
    assert rollout_state(back, done) == Rollout("rolled back", "why")


def test_a_paused_rollout_replaces_nothing_until_resumed() -> None:
    from controller.reconcilers.services import rollout_state
    for new in (svc("app:2", parallelism=2),
                service(service_spec=ServiceSpec(image="app:2", deploy=Deploy(replicas=4)))):
        old = [running(OLD, slot) for slot in range(1, 5)]
        paused = dataclasses.replace(new, status=dataclasses.replace(new.status, paused=True))
        assert plan(paused, old).empty
        state = rollout_state(paused, old)
        assert state.state == "paused" and "skiff rollout pause" in state.message
        assert not plan(new, old).empty
