"""The reconcilers wired together over the in-memory store: an app becomes services and
tasks, scales, and goes away. (The same flow runs against real etcd in integration.)"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from datetime import UTC, datetime

from controller.apply import apply_app
from controller.manager import run_reconcilers
from controller.store.memory import MemoryKV
from controller.store.objects import ObjectStore
from skiff.models.appspec import AppSpec
from skiff.models.kinds import APP, NODE, SERVICE, TASK
from skiff.models.objects import Node, NodeStatus, ObjectMeta
from tests.unit.factories import spec
from tests.unit.scheduling import svc


async def _until(store: ObjectStore, predicate, what: str, timeout: float = 5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        tasks, _ = await store.list(TASK)
        services, _ = await store.list(SERVICE)
        result = predicate(services, tasks)
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.01)


def _now() -> str:
    # A heartbeat, or the node lifecycle marks the node Down at once.
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@contextlib.asynccontextmanager
async def running(store: ObjectStore):
    task = asyncio.create_task(run_reconcilers(store))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_app_to_tasks_scale_and_delete():
    store = ObjectStore(MemoryKV())
    app = AppSpec(name="hello", services={"web": spec(replicas=3), "db": spec(replicas=1)})
    async with running(store):
        await apply_app(store, app)
        tasks = await _until(store, lambda s, t: t if len(t) == 4 else None, "4 tasks")
        assert sorted((t.spec.service, t.spec.slot) for t in tasks) == [
            ("db", 1), ("web", 1), ("web", 2), ("web", 3)]

        scaled = dataclasses.replace(app, services={"web": spec(replicas=5)})
        await apply_app(store, scaled)
        await _until(store, lambda s, t: len(t) == 5 and {x.metadata.name for x in s} == {"web"},
                     "db removed, web at 5")

        await store.delete(APP, "hello")
        await _until(store, lambda s, t: not s and not t, "everything gone")


async def test_tasks_bind_when_a_ready_node_appears():
    store = ObjectStore(MemoryKV())
    async with running(store):
        await apply_app(store, AppSpec(name="hello", services={"web": spec(replicas=2)}))
        await _until(store, lambda s, t: len(t) == 2 and all(
            "no node" in x.status.message for x in t), "pending with a reason")
        await store.create(Node(metadata=ObjectMeta(name="n1"),
                                status=NodeStatus(ready=True, last_heartbeat=_now())))
        tasks = await _until(store, lambda s, t: t if all(x.spec.node_name for x in t)
                             else None, "tasks bound")
        assert {t.spec.node_name for t in tasks} == {"n1"}
        assert {t.status.state for t in tasks} == {"assigned"}
        node = await store.get(NODE, "n1")
        assert node.status.ready


async def test_status_summaries_follow_the_tasks():
    store = ObjectStore(MemoryKV())
    async with running(store):
        await apply_app(store, AppSpec(name="hello", services={"web": spec(replicas=2)}))
        await _until(store, lambda s, t: len(t) == 2, "2 tasks")

        async def app_counted() -> bool:
            app = await store.get(APP, "hello")
            count = app.status.services.get("web")
            return bool(count and count.desired == 2 and count.pending == 2
                        and app.status.observed_generation == 1)

        deadline = asyncio.get_running_loop().time() + 5
        while not await app_counted():
            assert asyncio.get_running_loop().time() < deadline, "app status never summed up"
            await asyncio.sleep(0.01)
        svc = await store.get(SERVICE, "web", "hello")
        assert (svc.status.replicas, svc.status.pending) == (2, 2)


def _node(name: str, **labels: str) -> Node:
    return Node(metadata=ObjectMeta(name=name, labels=labels),
                status=NodeStatus(ready=True, last_heartbeat=_now()))


async def test_constrained_service_binds_only_to_matching_nodes():
    store = ObjectStore(MemoryKV())
    for n in (_node("n1", disk="ssd"), _node("n2", disk="hdd"), _node("n3", disk="ssd")):
        await store.create(n)
    web = svc(replicas=4, constraints=["node.labels.disk==ssd"]).spec
    other = svc(replicas=2, constraints=["node.labels.gpu==yes"]).spec
    async with running(store):
        await apply_app(store, AppSpec(name="hello", services={"web": web, "ml": other}))
        tasks = await _until(store, lambda s, t: t if len(t) == 6 and all(
            x.spec.node_name or x.status.message.startswith("0/3") for x in t) else None,
            "web bound, ml pending with a reason")
        web_nodes = sorted(x.spec.node_name for x in tasks if x.spec.service == "web")
        assert web_nodes == ["n1", "n1", "n3", "n3"]
        assert {x.status.message for x in tasks if x.spec.service == "ml"} == {
            "0/3 nodes available: 3 constraint node.labels.gpu==yes"}


async def test_global_service_runs_one_task_per_node_and_follows_nodes():
    store = ObjectStore(MemoryKV())
    await store.create(_node("n1", edge="1"))
    await store.create(_node("n2"))
    agent = svc("agent", mode="global", constraints=["node.labels.edge==1"]).spec
    async with running(store):
        await apply_app(store, AppSpec(name="hello", services={"agent": agent}))
        await _until(store, lambda s, t: [x.spec.node_name for x in t] == ["n1"],
                     "one task, on n1")
        await store.create(_node("n3", edge="1"))
        tasks = await _until(store, lambda s, t: t if sorted(
            x.spec.node_name for x in t) == ["n1", "n3"] else None, "a task on n3 too")
        assert {x.status.state for x in tasks} == {"assigned"}
        await _until(store, lambda s, t: s and s[0].status.replicas == 2,
                     "status counts the nodes")
        n1 = await store.get(NODE, "n1")
        n1.metadata.labels = {}
        await store.update(n1)
        await _until(store, lambda s, t: sorted(
            (x.spec.node_name, x.spec.desired_state) for x in t) == [
            ("n1", "shutdown"), ("n3", "running")], "n1's task stopped")
