"""Layers through a real overlayfs mount: whiteouts and opaque dirs hide lower content,
writes go to the upper dir, and a mounted layer survives garbage collection."""

from __future__ import annotations

import asyncio
import threading

import pytest

from agent.images import unpack
from agent.images.layerbuild import Entry, write_layer
from agent.images.models import Image
from agent.images.oci import make_config, make_manifest
from agent.images.store import ImageStore
from agent.images.unpack import lower_dirs
from tests.integration.images.conftest import layer_names, lexists, needs_root, overlay

pytestmark = [pytest.mark.integration, needs_root]


async def add_top_layer(store: ImageStore, base: Image, entries: list[Entry],
                        ref: str) -> Image:
    """An image of `base`'s layers plus one more, as a build would make it."""
    built = write_layer(entries, store.temp_path("top"))
    config = make_config([*base.diff_ids, built.diff_id], created="1970-01-01T00:00:00Z",
                         created_by="test")
    manifest = make_manifest(config, [*base.layers, built.descriptor])
    return await store.add_image(manifest, config, [None] * len(base.layers) + [built.path],
                                 ref=ref)


async def test_whiteouts_hide_lower_files_through_overlayfs(store, busybox, workdir):
    await store.open()
    image = await add_top_layer(store, busybox, [
        Entry("etc", "dir"), Entry("etc/.wh.group", "file", mode=0o644),
        Entry("root", "dir", mode=0o700), Entry("root/.wh..wh..opq", "file", mode=0o644),
        Entry("root/kept", "file", mode=0o644, data=b"new"),
        Entry("bin", "dir"), Entry("bin/.wh.vi", "file", mode=0o644),
        Entry("hello", "file", mode=0o755, data=b"#!/bin/sh\necho hello from layer 2\n"),
    ], "layered:v1")
    lowers = await lower_dirs(store, image)
    assert len(lowers) == 2 and lowers[1] == (await lower_dirs(store, busybox))[0]
    with overlay(lowers, workdir / "c") as (merged, _upper):
        assert (merged / "etc/passwd").exists() and not (merged / "etc/group").exists()
        assert not lexists(merged / "bin/vi") and (merged / "bin/sh").exists()
        assert [p.name for p in (merged / "root").iterdir()] == ["kept"]
        proc = await asyncio.create_subprocess_exec(
            "chroot", str(merged), "/hello", stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        assert out == b"hello from layer 2\n"
    assert (lowers[1] / "etc/group").exists()  # the lower layer itself is untouched


async def test_concurrent_requests_share_one_unpack(store, busybox, monkeypatch):
    calls: list[str] = []
    real = unpack.unpack_layer

    def counting(blob, diff_id, final, tmp):
        calls.append(diff_id)
        real(blob, diff_id, final, tmp)

    monkeypatch.setattr(unpack, "unpack_layer", counting)
    results = await asyncio.gather(*(lower_dirs(store, busybox) for _ in range(8)))
    assert calls == [busybox.diff_ids[0]]
    assert all(r == results[0] for r in results)
    assert list(store.tmp.iterdir()) == []


async def test_a_cancelled_waiter_does_not_abort_the_unpack(store, busybox, monkeypatch):
    loop = asyncio.get_running_loop()
    started = asyncio.Event()
    release = threading.Event()
    real = unpack.unpack_layer

    def gated(blob, diff_id, final, tmp):
        loop.call_soon_threadsafe(started.set)
        release.wait(30)
        real(blob, diff_id, final, tmp)

    monkeypatch.setattr(unpack, "unpack_layer", gated)
    first = asyncio.create_task(lower_dirs(store, busybox))
    await started.wait()  # the unpack is running on behalf of `first`
    second = asyncio.create_task(lower_dirs(store, busybox))
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    release.set()
    [layer] = await second
    assert (layer / "bin/busybox").exists()


async def test_a_mounted_layer_survives_removal_until_unmounted(store, busybox, workdir):
    lowers = await lower_dirs(store, busybox)
    with overlay(lowers, workdir / "c") as (merged, _upper):
        assert await store.remove("busybox")
        assert await store.resolve("busybox") is None
        assert list(store.blobs.iterdir()) == []
        assert lowers[0].is_dir() and (merged / "bin/sh").exists()
    result = await store.gc()
    assert result.layers == 1 and layer_names(store) == []
