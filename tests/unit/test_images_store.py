"""The store refuses content that does not match its digests, and leaves nothing behind
when it does (temp files in a temp dir; no root needed)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agent.images.errors import InvalidImage, InvalidReference
from agent.images.layerbuild import Entry, write_layer
from agent.images.oci import make_config, make_manifest, parse_manifest
from agent.images.store import ImageStore


def small_image(tmp: Path, content: bytes = b"hello") -> tuple[bytes, bytes, Path, str]:
    built = write_layer([Entry("a", "file", mode=0o644, data=content)], tmp / "layer.tgz")
    config = make_config([built.diff_id], created="1970-01-01T00:00:00Z", created_by="test")
    return make_manifest(config, [built.descriptor]), config, built.path, built.diff_id


def leftovers(store: ImageStore) -> list[str]:
    return sorted(p.name for p in store.tmp.iterdir())


async def test_a_valid_image_is_stored_and_indexed(tmp_path):
    store = ImageStore(tmp_path / "store")
    manifest, config, layer, diff_id = small_image(tmp_path)
    image = await store.add_image(manifest, config, [layer], ref="app")
    assert image.ref == "app:latest" and image.diff_ids == (diff_id,)
    assert layer.exists()  # a file outside the store's tmp/ is copied, not taken
    index = json.loads((store.root / "index.json").read_text())
    assert [d["annotations"]["org.opencontainers.image.ref.name"]
            for d in index["manifests"]] == ["app:latest"]
    assert json.loads((store.root / "oci-layout").read_text()) == {
        "imageLayoutVersion": "1.0.0"}
    assert len(list(store.blobs.iterdir())) == 3 and leftovers(store) == []


async def test_layer_content_not_matching_its_digest_is_refused(tmp_path):
    store = ImageStore(tmp_path / "store")
    manifest, config, _layer, _ = small_image(tmp_path)
    with pytest.raises(InvalidImage, match="layer 0: content is sha256:"):
        await store.add_image(manifest, config, [b"not the layer"], ref="app")
    assert list(store.blobs.iterdir()) == [] and leftovers(store) == []
    assert await store.resolve("app") is None


async def test_layer_not_matching_its_diff_id_is_refused(tmp_path):
    store = ImageStore(tmp_path / "store")
    manifest, _config, layer, _ = small_image(tmp_path)
    lie = make_config(["sha256:" + "0" * 64], created="1970-01-01T00:00:00Z",
                      created_by="test")
    layers = parse_manifest(manifest).layers
    with pytest.raises(InvalidImage, match="does not match the config's diff_id"):
        await store.add_image(make_manifest(lie, layers), lie, [layer], ref="app")
    assert list(store.blobs.iterdir()) == [] and leftovers(store) == []


async def test_config_not_matching_the_manifest_is_refused(tmp_path):
    store = ImageStore(tmp_path / "store")
    manifest, config, layer, _ = small_image(tmp_path)
    with pytest.raises(InvalidImage, match="config does not match"):
        await store.add_image(manifest, config + b" ", [layer], ref="app")


async def test_missing_layer_content_is_refused(tmp_path):
    store = ImageStore(tmp_path / "store")
    manifest, config, _layer, _ = small_image(tmp_path)
    with pytest.raises(InvalidImage, match="not in the store and no content"):
        await store.add_image(manifest, config, [None], ref="app")
    with pytest.raises(InvalidImage, match="1 layers, config 1 diff_ids, and 0 were given"):
        await store.add_image(manifest, config, [], ref="app")


async def test_files_handed_over_from_tmp_are_moved_in_or_dropped(tmp_path):
    store = ImageStore(tmp_path / "store")
    await store.open()
    manifest, config, layer, _ = small_image(tmp_path)
    owned = store.temp_path("layer")
    owned.write_bytes(b"garbage")
    with pytest.raises(InvalidImage):
        await store.add_image(manifest, config, [owned], ref="app")
    assert not owned.exists()
    owned.write_bytes(layer.read_bytes())
    await store.add_image(manifest, config, [owned], ref="app")
    assert not owned.exists() and leftovers(store) == []


async def test_bad_refs_are_refused_before_any_work(tmp_path):
    store = ImageStore(tmp_path / "store")
    manifest, config, layer, _ = small_image(tmp_path)
    with pytest.raises(InvalidReference):
        await store.add_image(manifest, config, [layer], ref="Bad Name")
    with pytest.raises(InvalidReference, match="needs name"):
        await store.add_image(manifest, config, [layer], ref="app@sha256:" + "0" * 64)


async def test_a_corrupted_blob_is_reported_not_trusted(tmp_path):
    store = ImageStore(tmp_path / "store")
    manifest, config, layer, _ = small_image(tmp_path)
    image = await store.add_image(manifest, config, [layer], ref="app")
    store.blob_path(image.id).write_bytes(b"{}")
    with pytest.raises(InvalidImage, match="corrupt"):
        await ImageStore(store.root).resolve("app")


async def test_opening_clears_temp_files_of_dead_processes_only(tmp_path):
    store = ImageStore(tmp_path / "store")
    store.tmp.mkdir(parents=True)
    dead = store.tmp / "4194305.abc.layer"  # above the kernel's pid limit: never alive
    dead.write_bytes(b"half a blob")
    (store.tmp / "4194305.def.unpack").mkdir()
    mine = store.temp_path("layer")
    mine.write_bytes(b"in flight")
    await store.open()
    assert sorted(p.name for p in store.tmp.iterdir()) == [mine.name]


async def test_concurrent_adds_of_different_tags_all_land(tmp_path):
    store = ImageStore(tmp_path / "store")
    images = []
    for i in range(6):
        (tmp_path / str(i)).mkdir()
        images.append(small_image(tmp_path / str(i), f"content {i}".encode()))
    await asyncio.gather(*(store.add_image(m, c, [layer], ref=f"app:{i}")
                           for i, (m, c, layer, _) in enumerate(images)))
    assert [s.ref for s in await store.list()] == [f"app:{i}" for i in range(6)]
    assert len(list(store.blobs.iterdir())) == 6 * 3 and leftovers(store) == []
