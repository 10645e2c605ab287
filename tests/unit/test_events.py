"""Events, the pure parts and the recorder: which status changes are worth an event, and
events written under a lease that expires them."""

from __future__ import annotations

from agent.taskrunner import task_events
from controller.events import EVENT_TTL, EventRecorder, event_of
from controller.store.memory import MemoryKV
from controller.store.objects import ObjectStore
from skiff.models.kinds import EVENT
from skiff.models.objects import CLUSTER_EVENTS, InvolvedObject, TaskStatus


def test_status_changes_worth_an_event() -> None:
    base = TaskStatus(state="starting")
    assert task_events(TaskStatus(state="assigned"),
                       TaskStatus(state="pulling", message="pulling busybox")) == [
        ("Pulling", "pulling busybox", "Normal")]
    assert task_events(base, TaskStatus(state="running", container_id="sk1")) == [
        ("Started", "container sk1", "Normal")]
    assert task_events(TaskStatus(state="running"),
                       TaskStatus(state="failed", oom_killed=True, message="OOMKilled")) == [
        ("OOMKilled", "OOMKilled", "Warning")]
    assert task_events(TaskStatus(state="running"),
                       TaskStatus(state="failed", message="exited with code 1")) == [
        ("Failed", "exited with code 1", "Warning")]
    assert task_events(TaskStatus(state="running", health="starting"),
                       TaskStatus(state="running", health="unhealthy")) == [
        ("Unhealthy", "health check fails", "Warning")]
    assert task_events(TaskStatus(state="failed", restarts=1),
                       TaskStatus(state="failed", restarts=2)) == [
        ("Restarted", "restart 2", "Normal")]
    assert task_events(base, TaskStatus(state="starting", message="other")) == []


def test_events_are_named_after_their_object_and_kept_per_app() -> None:
    task = event_of(InvolvedObject("Task", "web.1.abc", "shop"), "Started", "x" * 5000,
                    "Normal", "node n1")
    assert task.metadata.app == "shop" and task.metadata.name.startswith("web.1.abc.")
    assert len(task.message) == 1000
    node = event_of(InvolvedObject("Node", "n1"), "NodeDown", "", "Warning", "controller")
    assert node.metadata.app == CLUSTER_EVENTS


async def test_recorded_events_go_when_their_lease_runs_out() -> None:
    now = [0.0]
    kv = MemoryKV(clock=lambda: now[0])
    store = ObjectStore(kv)
    recorder = EventRecorder(store)
    stored = await recorder.write(event_of(InvolvedObject("Task", "web.1.a", "shop"),
                                           "Scheduled", "placed on node n1", "Normal",
                                           "scheduler"))
    assert stored.reason == "Scheduled"
    items, _ = await store.list(EVENT, "shop")
    assert [e.message for e in items] == ["placed on node n1"]
    now[0] += EVENT_TTL + 1
    kv.expire_leases()
    assert (await store.list(EVENT, "shop"))[0] == []


def test_a_full_queue_drops_rather_than_waits() -> None:
    recorder = EventRecorder(ObjectStore(MemoryKV()))
    for _ in range(recorder.queue.maxsize + 5):
        recorder.record(InvolvedObject("Node", "n1"), "NodeDown")
    assert recorder.dropped == 5


def test_an_image_ready_is_a_pulled_event() -> None:
    assert task_events(TaskStatus(state="pulling"), TaskStatus(state="starting")) == [
        ("Pulled", "image ready on this node", "Normal")]
