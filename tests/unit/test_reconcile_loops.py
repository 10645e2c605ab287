"""The reconcilers wired together over the in-memory store: an app becomes services and
tasks, scales, and goes away. (The same flow runs against real etcd in integration.)"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

from controller.apply import apply_app
from controller.manager import run_reconcilers
from controller.store.memory import MemoryKV
from controller.store.objects import ObjectStore
from skiff.models.appspec import AppSpec
from skiff.models.kinds import APP, NODE, SERVICE, TASK
from skiff.models.objects import Node, NodeStatus, ObjectMeta
from tests.unit.factories import spec


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
        await store.create(Node(metadata=ObjectMeta(name="n1"), status=NodeStatus(ready=True)))
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
