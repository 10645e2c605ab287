"""MemoryKV keeps etcd's revision semantics, and ObjectStore's contract holds over it.

No I/O and no real waiting: leases run on a fake clock, watches are read with a short
deadline so a missing event fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime

import pytest

from controller.store.errors import (
    AlreadyExists,
    Compacted,
    Conflict,
    LeaseNotFound,
    NotFound,
    Unavailable,
)
from controller.store.keys import object_key
from controller.store.kv import Compare, Delete, KVEvent, Put
from controller.store.memory import MemoryKV
from controller.store.objects import CreateOp, DeleteOp, ObjectStore, UpdateOp, WatchEvent
from skiff.models.appspec import AppSpec, ServiceSpec
from skiff.models.kinds import APP, NODE, SERVICE
from skiff.models.objects import App, Node, ObjectMeta, Service


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Reader:
    """Reads a watch with deadlines. Never cancels a pending read: cancelling an async
    generator's ``anext`` closes the generator, so a timeout keeps the read for later."""

    def __init__(self, events) -> None:
        self.events = events
        self._pending: asyncio.Future | None = None

    async def _wait(self, seconds: float) -> asyncio.Future | None:
        if self._pending is None:
            self._pending = asyncio.ensure_future(anext(self.events))
        done, _ = await asyncio.wait({self._pending}, timeout=seconds)
        if not done:
            return None
        fut, self._pending = self._pending, None
        return fut

    async def next(self, seconds: float = 1.0):
        fut = await self._wait(seconds)
        assert fut is not None, f"no event within {seconds}s"
        return fut.result()

    async def nothing_within(self, seconds: float = 0.05) -> None:
        fut = await self._wait(seconds)
        assert fut is None, f"unexpected event {fut.result()!r}"

    async def aclose(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await self._pending
        await self.events.aclose()


# -- MemoryKV ---------------------------------------------------------------------------

async def test_revisions_move_once_per_changing_transaction():
    kv = MemoryKV()
    assert kv.revision == 1
    r = await kv.txn([], [Put("/a", b"1"), Put("/b", b"2")])
    assert r.succeeded and r.revision == 2
    a, b = await kv.get("/a"), await kv.get("/b")
    assert (a.mod_revision, b.mod_revision) == (2, 2)
    failed = await kv.txn([Compare("/a", 1)], [Put("/a", b"x")])
    assert failed == type(failed)(False, 2)
    assert (await kv.get("/a")).value == b"1"
    nothing = await kv.txn([], [Delete("/absent")])
    assert nothing.succeeded and nothing.revision == 2 and kv.revision == 2


async def test_create_revision_survives_updates_and_resets_after_delete():
    kv = MemoryKV()
    await kv.txn([], [Put("/a", b"1")])
    await kv.txn([Compare("/a", 2)], [Put("/a", b"2")])
    a = await kv.get("/a")
    assert (a.create_revision, a.mod_revision, a.value) == (2, 3, b"2")
    await kv.txn([], [Delete("/a")])
    assert await kv.get("/a") is None
    await kv.txn([Compare("/a", 0)], [Put("/a", b"3")])
    a = await kv.get("/a")
    assert (a.create_revision, a.mod_revision) == (5, 5)


async def test_duplicate_keys_in_one_transaction_are_refused_like_etcd():
    kv = MemoryKV()
    with pytest.raises(ValueError, match="duplicate key"):
        await kv.txn([], [Put("/a", b"1"), Delete("/a")])
    assert kv.revision == 1


async def test_range_is_sorted_bounded_by_prefix_and_readable_at_old_revisions():
    kv = MemoryKV()
    await kv.txn([], [Put("/p/b", b"b1"), Put("/p/a", b"a1"), Put("/pq", b"x")])  # rev 2
    await kv.txn([], [Put("/p/b", b"b2")])  # rev 3
    await kv.txn([], [Delete("/p/a"), Put("/p/c", b"c1")])  # rev 4
    now, rev = await kv.range("/p/")
    assert rev == 4
    assert [(x.key, x.value) for x in now] == [("/p/b", b"b2"), ("/p/c", b"c1")]
    then, rev = await kv.range("/p/", revision=2)
    assert rev == 2
    assert [(x.key, x.value) for x in then] == [("/p/a", b"a1"), ("/p/b", b"b1")]
    with pytest.raises(ValueError, match="future"):
        await kv.range("/p/", revision=99)


async def test_compaction_drops_old_reads_and_watches_but_keeps_the_present():
    kv = MemoryKV()
    await kv.txn([], [Put("/p/a", b"1")])  # 2
    await kv.txn([], [Put("/p/a", b"2")])  # 3
    await kv.txn([], [Delete("/p/a")])  # 4
    await kv.txn([], [Put("/p/b", b"1")])  # 5
    await kv.compact(4)
    assert kv.compact_revision == 4
    with pytest.raises(Compacted) as info:
        await kv.range("/p/", revision=3)
    assert (info.value.requested, info.value.compact_revision) == (3, 4)
    assert (await kv.range("/p/", revision=4))[0] == []
    assert [x.key for x in (await kv.range("/p/"))[0]] == ["/p/b"]
    with pytest.raises(Compacted):
        await anext(kv.watch("/p/", 2))
    events = Reader(kv.watch("/p/", 4))  # the compact revision itself is still watchable
    assert (await events.next()).type == "DELETE"
    assert (await events.next()).key == "/p/b"
    await events.aclose()
    await kv.compact(2)  # compacting an older revision again changes nothing
    assert kv.compact_revision == 4


async def test_watch_replays_history_then_follows_live_changes_and_stops_on_close():
    kv = MemoryKV()
    await kv.txn([], [Put("/w/a", b"1"), Put("/other", b"x")])  # 2
    await kv.txn([], [Put("/w/a", b"2")])  # 3
    events = Reader(kv.watch("/w/", 2))
    assert await events.next() == KVEvent("PUT", "/w/a", b"1", 2, 2)
    assert await events.next() == KVEvent("PUT", "/w/a", b"2", 3, 2)
    await events.nothing_within()
    await kv.txn([], [Delete("/w/a")])  # 4
    assert await events.next() == KVEvent("DELETE", "/w/a", b"2", 4)
    assert kv.watch_count == 1
    await events.aclose()
    assert kv.watch_count == 0


async def test_watch_from_zero_starts_after_the_present():
    kv = MemoryKV()
    await kv.txn([], [Put("/w/old", b"1")])
    events = kv.watch("/w/", 0)
    pending = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0)  # let the watch register
    await kv.txn([], [Put("/w/new", b"2")])
    assert (await asyncio.wait_for(pending, 1)).key == "/w/new"
    await events.aclose()


async def test_closing_the_store_ends_watches_with_unavailable():
    kv = MemoryKV()
    events = kv.watch("/", 0)
    pending = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0)
    await kv.close()
    with pytest.raises(Unavailable):
        await asyncio.wait_for(pending, 1)
    with pytest.raises(Unavailable):
        await kv.get("/a")


async def test_leases_expire_on_the_clock_and_take_their_keys_in_one_revision():
    clock = FakeClock()
    kv = MemoryKV(clock=clock)
    lease = await kv.grant_lease(10)
    await kv.txn([], [Put("/l/a", b"1", lease), Put("/l/b", b"2", lease), Put("/keep", b"k")])
    assert (await kv.get("/l/a")).lease == lease
    clock.now += 9
    assert await kv.keepalive(lease) == 10  # pushes expiry to now + 10
    clock.now += 9
    assert await kv.get("/l/a") is not None
    events = Reader(kv.watch("/l/", kv.revision + 1))
    clock.now += 2
    assert kv.expire_leases() == [lease]
    first, second = await events.next(), await events.next()
    assert (first.type, second.type) == ("DELETE", "DELETE")
    assert first.revision == second.revision == kv.revision
    assert await kv.get("/l/a") is None and await kv.get("/keep") is not None
    assert await kv.keepalive(lease) == 0
    await events.aclose()


async def test_revoked_or_unknown_leases():
    kv = MemoryKV()
    lease = await kv.grant_lease(5)
    await kv.txn([], [Put("/l/a", b"1", lease)])
    await kv.revoke_lease(lease)
    assert await kv.get("/l/a") is None
    await kv.revoke_lease(lease)  # already gone: nothing to do
    rev = kv.revision
    with pytest.raises(LeaseNotFound):
        await kv.txn([], [Put("/l/b", b"1", lease)])
    assert kv.revision == rev


async def test_rewriting_a_key_without_its_lease_detaches_it():
    clock = FakeClock()
    kv = MemoryKV(clock=clock)
    lease = await kv.grant_lease(5)
    await kv.txn([], [Put("/l/a", b"1", lease)])
    await kv.txn([], [Put("/l/a", b"2")])
    clock.now += 6
    assert kv.expire_leases() == [lease]
    assert (await kv.get("/l/a")).value == b"2"


# -- ObjectStore over MemoryKV ---------------------------------------------------------

NOW = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)


def make_store(kv: MemoryKV | None = None) -> ObjectStore:
    uids = iter(f"uid-{i}" for i in range(1, 1000))
    return ObjectStore(kv or MemoryKV(), clock=lambda: NOW, new_uid=lambda: next(uids))


def an_app(name: str = "hello", **meta: object) -> App:
    return App(metadata=ObjectMeta(name=name, **meta),  # type: ignore[arg-type]
               spec=AppSpec(name=name, services={"web": ServiceSpec(image="busybox")}))


def a_service(app: str, name: str) -> Service:
    return Service(metadata=ObjectMeta(name=name, app=app), spec=ServiceSpec(image="nginx"))


async def test_create_fills_metadata_and_stores_no_resource_version():
    kv = MemoryKV()
    store = make_store(kv)
    given = an_app(uid="stale", resource_version=77)
    created = await store.create(given)
    assert created.metadata.uid == "uid-1"
    assert created.metadata.created_at == "2026-03-01T12:30:05Z"
    assert created.metadata.generation == 1
    assert created.metadata.resource_version == kv.revision
    assert given.metadata.uid == "stale"  # the caller's object is left alone
    raw = json.loads((await kv.get(object_key(APP, "hello"))).value)
    assert "resourceVersion" not in raw["metadata"]
    assert raw["metadata"]["uid"] == "uid-1"
    assert await store.get(APP, "hello") == created


async def test_create_keeps_a_given_generation_and_refuses_a_taken_name():
    store = make_store()
    created = await store.create(an_app(generation=4))
    assert created.metadata.generation == 4
    with pytest.raises(AlreadyExists, match="apps/hello"):
        await store.create(an_app())
    assert (await store.get(APP, "hello")).metadata.uid == created.metadata.uid


async def test_update_is_compare_and_swap_on_resource_version():
    kv = MemoryKV()
    store = make_store(kv)
    v1 = await store.create(an_app())
    v2 = await store.update(an_app_with_label(v1, "one"))
    assert v2.metadata.resource_version > v1.metadata.resource_version
    rev = kv.revision
    with pytest.raises(Conflict) as info:
        await store.update(an_app_with_label(v1, "stale"))
    assert info.value.key == "apps/hello"
    assert (info.value.expected, info.value.actual) == (v1.metadata.resource_version,
                                                        v2.metadata.resource_version)
    assert kv.revision == rev
    assert (await store.get(APP, "hello")).metadata.labels == {"v": "one"}
    with pytest.raises(ValueError, match="resourceVersion"):
        await store.update(an_app())
    await store.delete(APP, "hello")
    with pytest.raises(NotFound):
        await store.update(v2)


def an_app_with_label(app: App, value: str) -> App:
    import dataclasses
    return dataclasses.replace(app, metadata=dataclasses.replace(app.metadata,
                                                                 labels={"v": value}))


async def test_delete_needs_the_object_and_honours_a_given_version():
    store = make_store()
    with pytest.raises(NotFound, match="nodes/n1"):
        await store.delete(NODE, "n1")
    v1 = await store.create(Node(metadata=ObjectMeta(name="n1")))
    await store.update(v1)
    with pytest.raises(Conflict):
        await store.delete(NODE, "n1", resource_version=v1.metadata.resource_version)
    assert await store.get(NODE, "n1")
    rev = await store.delete(NODE, "n1")
    assert rev == store.kv.revision  # type: ignore[attr-defined]
    with pytest.raises(NotFound):
        await store.get(NODE, "n1")


async def test_list_is_sorted_filtered_by_app_and_skips_what_it_cannot_decode(caplog):
    kv = MemoryKV()
    store = make_store(kv)
    for app, name in [("b", "web"), ("a", "db"), ("a", "web")]:
        await store.create(a_service(app, name))
    await kv.txn([], [Put(object_key(SERVICE, "broken", "a"), b"{not json")])
    await kv.txn([], [Put(object_key(SERVICE, "wrong", "a"), b'{"metadata": 3}')])
    with caplog.at_level(logging.WARNING):
        objs, rev = await store.list(SERVICE)
    assert [(o.metadata.app, o.metadata.name) for o in objs] == [
        ("a", "db"), ("a", "web"), ("b", "web")]
    assert rev == kv.revision
    assert "services/a/broken" in caplog.text and "services/a/wrong" in caplog.text
    only_a, _ = await store.list(SERVICE, "a")
    assert [o.metadata.name for o in only_a] == ["db", "web"]
    assert all(o.metadata.resource_version > 0 for o in objs)


async def test_commit_is_all_or_nothing_and_names_the_key_that_failed():
    kv = MemoryKV()
    store = make_store(kv)
    app = await store.create(an_app())
    web = await store.create(a_service("hello", "web"))
    rev = kv.revision
    stale = an_app_with_label(app, "x")
    await store.update(an_app_with_label(app, "moved"))
    with pytest.raises(Conflict, match="apps/hello"):
        await store.commit([CreateOp(a_service("hello", "db")), UpdateOp(stale),
                            DeleteOp(SERVICE, "web", "hello")])
    assert kv.revision == rev + 1  # only the update made outside the commit
    with pytest.raises(NotFound):
        await store.get(SERVICE, "db", "hello")
    assert await store.get(SERVICE, "web", "hello") == web
    with pytest.raises(AlreadyExists, match="services/hello/web"):
        await store.commit([CreateOp(a_service("hello", "db")),
                            CreateOp(a_service("hello", "web"))])
    with pytest.raises(NotFound, match="services/hello/gone"):
        await store.commit([DeleteOp(SERVICE, "gone", "hello")])

    current = await store.get(APP, "hello")
    done = await store.commit([CreateOp(a_service("hello", "db")),
                               UpdateOp(an_app_with_label(current, "new")),
                               DeleteOp(SERVICE, "web", "hello", web.metadata.resource_version)])
    assert done == kv.revision
    assert (await store.get(SERVICE, "db", "hello")).metadata.resource_version == done
    assert (await store.get(APP, "hello")).metadata.labels == {"v": "new"}
    with pytest.raises(NotFound):
        await store.get(SERVICE, "web", "hello")
    with pytest.raises(ValueError, match="only once"):
        await store.commit([CreateOp(an_app("x")), DeleteOp(APP, "x")])


async def test_watch_reports_changes_after_the_revision_with_their_types():
    kv = MemoryKV()
    store = make_store(kv)
    before = await store.create(a_service("hello", "old"))
    events = Reader(store.watch(SERVICE, "hello",
                                resource_version=before.metadata.resource_version))
    web = await store.create(a_service("hello", "web"))
    await store.create(a_service("other", "web"))  # another app: not in this watch
    web2 = await store.update(web)
    deleted_at = await store.delete(SERVICE, "web", "hello")
    got = [await events.next() for _ in range(3)]
    assert [(e.type, e.object.metadata.name, e.revision) for e in got] == [
        ("ADDED", "web", web.metadata.resource_version),
        ("MODIFIED", "web", web2.metadata.resource_version),
        ("DELETED", "web", deleted_at),
    ]
    assert got[1].object == web2
    assert got[2].object.metadata.resource_version == deleted_at
    assert isinstance(got[0], WatchEvent)
    await events.nothing_within()
    await events.aclose()
    assert kv.watch_count == 0


async def test_watch_from_a_compacted_revision_raises_then_relist_and_watch_works():
    kv = MemoryKV()
    store = make_store(kv)
    first = await store.create(an_app("a"))
    await store.create(an_app("b"))
    await store.update(await store.get(APP, "b"))
    await kv.compact(kv.revision)
    with pytest.raises(Compacted) as info:
        await anext(store.watch(APP, resource_version=first.metadata.resource_version))
    assert info.value.requested == first.metadata.resource_version
    assert kv.watch_count == 0
    objs, rev = await store.list(APP)
    assert [o.metadata.name for o in objs] == ["a", "b"]
    events = Reader(store.watch(APP, resource_version=rev))
    await store.create(an_app("c"))
    ev = await events.next()
    assert (ev.type, ev.object.metadata.name) == ("ADDED", "c")
    await events.aclose()


async def test_watch_skips_undecodable_values_instead_of_failing(caplog):
    kv = MemoryKV()
    store = make_store(kv)
    events = Reader(store.watch(APP, resource_version=kv.revision))
    await kv.txn([], [Put(object_key(APP, "junk"), b"[]")])
    await store.create(an_app("good"))
    with caplog.at_level(logging.WARNING):
        ev = await events.next()
    assert ev.object.metadata.name == "good"
    assert "apps/junk" in caplog.text
    await events.aclose()


async def test_cancelling_the_consumer_closes_the_watch():
    kv = MemoryKV()
    store = make_store(kv)
    started = asyncio.Event()

    async def consume() -> None:
        started.set()
        async for _ in store.watch(APP):
            pass

    task = asyncio.create_task(consume())
    await started.wait()
    await asyncio.sleep(0)
    assert kv.watch_count == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert kv.watch_count == 0


async def test_leases_pass_through_to_the_kv():
    clock = FakeClock()
    kv = MemoryKV(clock=clock)
    store = ObjectStore(kv)
    lease = await store.grant_lease(3)
    assert await store.keepalive(lease) == 3
    await store.revoke_lease(lease)
    assert await store.keepalive(lease) == 0
