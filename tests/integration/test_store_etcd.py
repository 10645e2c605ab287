"""The object store against a real etcd: CAS, consistent lists, watches that resume,
compaction, leases and all-or-nothing commits.

Timing is by deadline-bound polling and watch reads with deadlines, never a bare sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from controller.store.errors import (
    AlreadyExists,
    Compacted,
    Conflict,
    LeaseNotFound,
    NotFound,
    Unavailable,
)
from controller.store.etcd import EtcdKV
from controller.store.etcd_server import (
    EtcdProcess,
    EtcdStartError,
    free_port,
    start_etcd,
    stop_pid,
)
from controller.store.keys import object_key
from controller.store.kv import Compare, Put
from controller.store.objects import CreateOp, DeleteOp, ObjectStore, UpdateOp
from skiff.models.appspec import AppSpec, ServiceSpec
from skiff.models.kinds import APP, SERVICE
from skiff.models.objects import App, ObjectMeta, Service

pytestmark = pytest.mark.integration

T = TypeVar("T")


def an_app(name: str, label: str = "") -> App:
    return App(metadata=ObjectMeta(name=name, labels={"v": label} if label else {}),
               spec=AppSpec(name=name, services={"web": ServiceSpec(image="busybox")}))


def a_service(app: str, name: str, image: str = "nginx") -> Service:
    return Service(metadata=ObjectMeta(name=name, app=app), spec=ServiceSpec(image=image))


def relabel(obj: Any, value: str) -> Any:
    return dataclasses.replace(obj, metadata=dataclasses.replace(obj.metadata,
                                                                 labels={"v": value}))


async def current_revision(kv: EtcdKV) -> int:
    return (await kv.range("/nothing-here/"))[1]


async def eventually(fn: Callable[[], Awaitable[T]], seconds: float = 15.0) -> T:
    """Retry ``fn`` until it returns something truthy or the deadline passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    last: Any = None
    while loop.time() < deadline:
        try:
            last = await fn()
            if last:
                return last
        except Unavailable as exc:
            last = exc
        await asyncio.sleep(0.05)
    raise AssertionError(f"not true within {seconds}s (last: {last!r})")


async def no_tasks_left(baseline: set[asyncio.Task[Any]], seconds: float = 2.0) -> None:
    """Wait (bounded) for every task started since ``baseline`` to finish."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        extra = asyncio.all_tasks() - baseline - {asyncio.current_task()}
        if not extra:
            return
        assert loop.time() < deadline, f"tasks left behind: {extra}"
        await asyncio.sleep(0.01)


def _server_watchers(url: str) -> int:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("etcd_debugging_mvcc_watcher_total "):
                return int(float(line.split()[1]))
    raise AssertionError("etcd does not report etcd_debugging_mvcc_watcher_total")


async def server_watchers(proc: EtcdProcess) -> int:
    """How many watches etcd itself holds open (from its metrics)."""
    return await asyncio.to_thread(_server_watchers, proc.client_url)


class Reader:
    """Reads a watch with deadlines. Never cancels a pending read: cancelling an async
    generator's ``anext`` closes the generator, so a timeout keeps the read for later."""

    def __init__(self, events: Any) -> None:
        self.events = events
        self._pending: asyncio.Future[Any] | None = None

    async def _wait(self, seconds: float) -> asyncio.Future[Any] | None:
        if self._pending is None:
            self._pending = asyncio.ensure_future(anext(self.events))
        done, _ = await asyncio.wait({self._pending}, timeout=seconds)
        if not done:
            return None
        fut, self._pending = self._pending, None
        return fut

    async def next(self, seconds: float = 5.0) -> Any:
        fut = await self._wait(seconds)
        assert fut is not None, f"no event within {seconds}s"
        return fut.result()

    async def nothing_within(self, seconds: float = 0.2) -> None:
        fut = await self._wait(seconds)
        assert fut is None, f"unexpected event {fut.result()!r}"

    async def aclose(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await self._pending
        await self.events.aclose()


async def test_create_update_delete_are_compare_and_swap(etcd_kv):
    store = ObjectStore(etcd_kv)
    v1 = await store.create(an_app("hello"))
    assert v1.metadata.uid and v1.metadata.created_at.endswith("Z")
    assert v1.metadata.resource_version == await current_revision(etcd_kv)
    with pytest.raises(AlreadyExists, match="apps/hello"):
        await store.create(an_app("hello"))

    v2 = await store.update(relabel(v1, "two"))
    assert v2.metadata.resource_version > v1.metadata.resource_version
    before = await current_revision(etcd_kv)
    with pytest.raises(Conflict) as info:
        await store.update(relabel(v1, "stale"))
    assert info.value.key == "apps/hello"
    assert info.value.expected == v1.metadata.resource_version
    assert info.value.actual == v2.metadata.resource_version
    with pytest.raises(Conflict):
        await store.delete(APP, "hello", resource_version=v1.metadata.resource_version)
    assert await current_revision(etcd_kv) == before  # a lost compare writes nothing
    assert await store.get(APP, "hello") == v2

    raw = await etcd_kv.get(object_key(APP, "hello"))
    assert "resourceVersion" not in json.loads(raw.value)["metadata"]

    await store.delete(APP, "hello", resource_version=v2.metadata.resource_version)
    with pytest.raises(NotFound):
        await store.get(APP, "hello")
    with pytest.raises(NotFound):
        await store.delete(APP, "hello")
    with pytest.raises(NotFound):
        await store.update(v2)


async def test_list_is_sorted_filtered_and_reads_one_snapshot(etcd_kv):
    store = ObjectStore(etcd_kv)
    for app, name in [("b", "web"), ("a", "web"), ("a", "db"), ("ab", "x")]:
        await store.create(a_service(app, name))
    objs, rev = await store.list(SERVICE)
    assert [(o.metadata.app, o.metadata.name) for o in objs] == [
        ("a", "db"), ("a", "web"), ("ab", "x"), ("b", "web")]
    assert rev == await current_revision(etcd_kv)
    only_a, _ = await store.list(SERVICE, "a")
    assert [o.metadata.name for o in only_a] == ["db", "web"]

    await store.delete(SERVICE, "db", "a")
    old, at = await etcd_kv.range(object_key(SERVICE, "db", "a").rsplit("/", 1)[0] + "/", rev)
    assert at == rev and [x.key.rsplit("/", 1)[1] for x in old] == ["db", "web"]


async def test_list_never_sees_half_of_a_commit(etcd_kv):
    """Two objects are always rewritten together; a list built from more than one read
    would sooner or later catch one new and one old."""
    store = ObjectStore(etcd_kv)
    left = await store.create(a_service("pair", "left", "img:0"))
    right = await store.create(a_service("pair", "right", "img:0"))
    stop = asyncio.Event()

    async def writer() -> int:
        nonlocal left, right
        n = 0
        while not stop.is_set():
            n += 1
            image = f"img:{n}"
            new_left = dataclasses.replace(left, spec=ServiceSpec(image=image))
            new_right = dataclasses.replace(right, spec=ServiceSpec(image=image))
            rev = await store.commit([UpdateOp(new_left), UpdateOp(new_right)])
            left = dataclasses.replace(new_left, metadata=dataclasses.replace(
                new_left.metadata, resource_version=rev))
            right = dataclasses.replace(new_right, metadata=dataclasses.replace(
                new_right.metadata, resource_version=rev))
        return n

    task = asyncio.create_task(writer())
    try:
        for _ in range(60):
            objs, rev = await store.list(SERVICE, "pair")
            assert len({o.spec.image for o in objs}) == 1, objs
            assert all(o.metadata.resource_version <= rev for o in objs)
    finally:
        stop.set()
        writes = await task
    assert writes > 1


async def test_watch_from_a_revision_reports_each_change_once_with_its_type(etcd_kv):
    store = ObjectStore(etcd_kv)
    start = await store.create(a_service("hello", "before"))
    web = await store.create(a_service("hello", "web"))
    await store.create(a_service("other", "web"))  # another app
    await store.create(an_app("hello"))  # another kind
    web2 = await store.update(dataclasses.replace(web, spec=ServiceSpec(image="nginx:2")))
    gone_at = await store.delete(SERVICE, "web", "hello")

    events = Reader(store.watch(SERVICE, "hello", resource_version=start.metadata.resource_version))
    try:
        got = [await events.next() for _ in range(3)]
        assert [(e.type, e.object.metadata.name, e.revision) for e in got] == [
            ("ADDED", "web", web.metadata.resource_version),
            ("MODIFIED", "web", web2.metadata.resource_version),
            ("DELETED", "web", gone_at),
        ]
        assert got[1].object == web2
        assert got[2].object.spec.image == "nginx:2"  # a deletion carries the last state
        await events.nothing_within()
        live = await store.create(a_service("hello", "live"))
        ev = await events.next()
        assert (ev.type, ev.object) == ("ADDED", live)
    finally:
        await events.aclose()


async def test_watch_resumes_after_etcd_restarts(restartable_etcd):
    etcd = restartable_etcd
    kv = EtcdKV(etcd.proc.host, etcd.proc.port, timeout=5.0, watch_backoff=(0.05, 0.5))
    store = ObjectStore(kv)
    baseline = asyncio.all_tasks()
    got: asyncio.Queue[Any] = asyncio.Queue()

    async def consume(since: int) -> None:
        async for ev in store.watch(APP, resource_version=since):
            await got.put(ev)

    try:
        first = await store.create(an_app("a"))
        task = asyncio.create_task(consume(first.metadata.resource_version))
        b = await store.create(an_app("b"))
        ev = await asyncio.wait_for(got.get(), 5)
        assert (ev.type, ev.object.metadata.name) == ("ADDED", "b")

        await asyncio.to_thread(etcd.stop)
        with pytest.raises(Unavailable):
            await EtcdKV(etcd.proc.host, etcd.proc.port, timeout=0.5).get("/x")
        await asyncio.to_thread(etcd.start)

        c = await eventually(lambda: store.create(an_app("c")))
        b2 = await store.update(relabel(b, "2"))
        gone_at = await store.delete(APP, "a")
        after = [await asyncio.wait_for(got.get(), 10) for _ in range(3)]
        assert [(e.type, e.object.metadata.name, e.revision) for e in after] == [
            ("ADDED", "c", c.metadata.resource_version),
            ("MODIFIED", "b", b2.metadata.resource_version),
            ("DELETED", "a", gone_at),
        ]
        await asyncio.sleep(0.2)  # a repeated event would have arrived by now
        assert got.empty(), "events were delivered twice after the resume"
        assert not task.done()

        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await no_tasks_left(baseline)
    finally:
        await kv.close()


async def test_compacted_history_says_relist_and_relist_then_watch_works(etcd_kv):
    store = ObjectStore(etcd_kv)
    old = await store.create(an_app("a"))
    cur = old
    for i in range(3):
        cur = await store.update(relabel(cur, str(i)))
    await etcd_kv.compact(cur.metadata.resource_version)

    with pytest.raises(Compacted) as info:
        await anext(store.watch(APP, resource_version=old.metadata.resource_version))
    assert info.value.requested == old.metadata.resource_version
    assert info.value.compact_revision == cur.metadata.resource_version
    with pytest.raises(Compacted):
        await etcd_kv.range("/skiff/", old.metadata.resource_version)
    await etcd_kv.compact(old.metadata.resource_version)  # already compacted: no error

    objs, rev = await store.list(APP)
    assert objs == [cur]
    events = Reader(store.watch(APP, resource_version=rev))
    try:
        b = await store.create(an_app("b"))
        ev = await events.next()
        assert (ev.type, ev.object) == ("ADDED", b)
    finally:
        await events.aclose()


async def test_keys_under_a_lease_vanish_when_it_expires(etcd_kv):
    lease = await etcd_kv.grant_lease(1)  # etcd raises this to its minimum (2 s)
    try:
        result = await etcd_kv.txn([Compare("/skiff/leased", 0)],
                                   [Put("/skiff/leased", b"x", lease)])
        assert result.succeeded
        stored = await etcd_kv.get("/skiff/leased")
        assert stored is not None and stored.lease == lease
        events = Reader(etcd_kv.watch("/skiff/leased", result.revision + 1))
        try:
            async def gone() -> bool:
                return await etcd_kv.get("/skiff/leased") is None

            await eventually(gone, seconds=20)
            ev = await events.next()
            assert (ev.type, ev.key, ev.value) == ("DELETE", "/skiff/leased", b"x")
        finally:
            await events.aclose()
        assert await etcd_kv.keepalive(lease) == 0
        with pytest.raises(LeaseNotFound):
            await etcd_kv.txn([], [Put("/skiff/leased", b"y", lease)])
    finally:
        await etcd_kv.revoke_lease(lease)  # gone already: must not raise


async def test_keepalive_and_revoke(etcd_kv):
    store = ObjectStore(etcd_kv)
    lease = await store.grant_lease(30)
    assert 0 < await store.keepalive(lease) <= 30
    await etcd_kv.txn([], [Put("/skiff/leader", b"me", lease)])
    await store.revoke_lease(lease)
    assert await etcd_kv.get("/skiff/leader") is None
    assert await store.keepalive(lease) == 0


async def test_commit_is_all_or_nothing(etcd_kv):
    store = ObjectStore(etcd_kv)
    app = await store.create(an_app("hello"))
    web = await store.create(a_service("hello", "web"))
    moved = await store.update(relabel(app, "moved"))
    before = await current_revision(etcd_kv)
    with pytest.raises(Conflict, match="apps/hello") as info:
        await store.commit([CreateOp(a_service("hello", "db")), UpdateOp(relabel(app, "x")),
                            DeleteOp(SERVICE, "web", "hello")])
    assert info.value.actual == moved.metadata.resource_version
    with pytest.raises(AlreadyExists, match="services/hello/web"):
        await store.commit([CreateOp(a_service("hello", "db")),
                            CreateOp(a_service("hello", "web"))])
    assert await current_revision(etcd_kv) == before
    with pytest.raises(NotFound):
        await store.get(SERVICE, "db", "hello")
    assert await store.get(SERVICE, "web", "hello") == web

    rev = await store.commit([CreateOp(a_service("hello", "db")),
                              UpdateOp(relabel(moved, "new")),
                              DeleteOp(SERVICE, "web", "hello", web.metadata.resource_version)])
    assert rev == await current_revision(etcd_kv)
    objs, _ = await store.list(SERVICE, "hello")
    assert [(o.metadata.name, o.metadata.resource_version) for o in objs] == [("db", rev)]
    assert (await store.get(APP, "hello")).metadata.resource_version == rev


async def test_closing_a_watch_leaves_nothing_running(etcd_kv, etcd_server):
    store = ObjectStore(etcd_kv)
    await current_revision(etcd_kv)  # the channel's own machinery is up before we count
    baseline = asyncio.all_tasks()
    assert await server_watchers(etcd_server) == 0
    events = Reader(store.watch(APP))
    await events.nothing_within(0.1)  # the watch is open and waiting
    assert await server_watchers(etcd_server) == 1
    await events.aclose()
    await no_tasks_left(baseline)
    await eventually(lambda: _is_zero(server_watchers(etcd_server)), seconds=5)

    started = asyncio.Event()

    async def consume() -> None:
        started.set()
        async for _ in store.watch(APP):
            pass

    task = asyncio.create_task(consume())
    await started.wait()
    await store.create(an_app("x"))
    await eventually(lambda: _is_positive(server_watchers(etcd_server)), seconds=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await no_tasks_left(baseline)
    await eventually(lambda: _is_zero(server_watchers(etcd_server)), seconds=5)


async def _is_zero(count: Awaitable[int]) -> bool:
    return await count == 0


async def _is_positive(count: Awaitable[int]) -> bool:
    return await count > 0


async def test_an_unreachable_etcd_is_unavailable_not_a_hang():
    kv = EtcdKV("127.0.0.1", free_port(), timeout=0.5)
    try:
        with pytest.raises(Unavailable):
            await kv.get("/x")
        with pytest.raises(Unavailable):
            await kv.txn([], [Put("/x", b"1")])
    finally:
        await kv.close()
    with pytest.raises(Unavailable, match="closed"):
        await kv.get("/x")


def test_start_etcd_fails_with_the_log_tail_when_the_port_is_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(EtcdStartError, match="address already in use"):
            start_etcd(tmp_path / "data", client_port=port, log_path=tmp_path / "etcd.log",
                       ready_timeout=20)


def test_stop_pid_leaves_a_reused_pid_alone_unless_told_otherwise():
    proc = subprocess.Popen(["sleep", "60"])
    try:
        assert stop_pid(proc.pid, timeout=1, expect="etcd")
        assert proc.poll() is None  # not an etcd: untouched
        assert stop_pid(proc.pid, timeout=5)
        with pytest.raises(ProcessLookupError):  # gone, and reaped (no zombie)
            os.kill(proc.pid, 0)
    finally:
        proc.kill()
        proc.wait()
