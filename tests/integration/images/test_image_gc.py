"""The agent's image GC on a real store: a pulled image no task used for its time is
removed with its blobs and unpacked layers; one in use, or made on the node, stays."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.images.busybox import build_busybox_image
from agent.images.gc import ImageGC
from agent.images.gc_plan import GcPolicy
from agent.images.importer import import_image
from agent.images.store import ImageStore

PULLED = "10.0.0.1:5000/pulled:1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store() -> AsyncIterator[ImageStore]:
    base = Path(tempfile.mkdtemp(prefix="skiff-gc-"))
    try:
        store = ImageStore(base / "store")
        await build_busybox_image(store)
        rootfs = base / "rootfs"
        (rootfs / "app").mkdir(parents=True)
        (rootfs / "app" / "data.bin").write_bytes(b"x" * 100_000)
        await import_image(store, rootfs, PULLED)
        await store.tag(PULLED, "pulled:1")  # as NodeImages aliases a pulled bare name
        yield store
    finally:
        shutil.rmtree(base, ignore_errors=True)


async def test_an_unused_pulled_image_goes_with_its_blobs(store: ImageStore) -> None:
    pulled = await store.resolve(PULLED)
    assert pulled is not None
    blobs = [store.blob_path(d.digest) for d in pulled.layers]
    assert all(p.exists() for p in blobs)
    in_use: set[str] = {"pulled:1"}
    clock = Clock()
    gc = ImageGC(store, lambda: in_use, GcPolicy(unused_for=60), clock=clock)

    assert await gc.run_once() == []
    clock.now += 3600
    assert await gc.run_once() == []  # a task still names it (by its bare alias)

    in_use.clear()
    clock.now += 59
    assert await gc.run_once() == []  # unused for 59 s only
    clock.now += 1
    assert await gc.run_once() == [pulled.digest]
    assert await store.resolve(PULLED) is None and await store.resolve("pulled:1") is None
    assert not any(p.exists() for p in blobs)
    assert not store.layer_path(pulled.diff_ids[0]).exists()
    assert await store.resolve("busybox") is not None  # made here: the user's to remove


async def test_a_task_bound_during_the_pass_keeps_its_image(store: ImageStore) -> None:
    calls = 0

    def in_use() -> set[str]:
        nonlocal calls
        calls += 1
        return set() if calls == 1 else {PULLED}  # bound between plan and removal

    clock = Clock()
    gc = ImageGC(store, in_use, GcPolicy(unused_for=0), clock=clock)
    assert await gc.run_once() == []
    assert await store.resolve(PULLED) is not None
