"""The store side of pulls by digest: `name@digest` is kept untagged, resolvable by
digest, not listed, and collected once removed."""

from __future__ import annotations

import pytest

from agent.images.errors import InvalidReference
from agent.images.oci import sha256_digest
from agent.images.store import ImageStore
from tests.unit.test_images_store import small_image


async def test_an_image_added_by_digest_stays_untagged(tmp_path) -> None:
    store = ImageStore(tmp_path / "store")
    manifest, config, layer, _ = small_image(tmp_path)
    digest = sha256_digest(manifest)
    image = await store.add_image(manifest, config, [layer], ref=f"r:5000/app@{digest}")
    assert image.ref == f"r:5000/app@{digest}" and image.digest == digest
    assert await store.list() == []
    assert (await store.resolve(f"r:5000/app@{digest}")) is not None
    # Tagging the same content later makes it listed; adding by digest again is a no-op.
    await store.add_image(manifest, config, [None], ref="r:5000/app:1")
    await store.add_image(manifest, config, [None], ref=f"r:5000/app@{digest}")
    assert [s.ref for s in await store.list()] == ["r:5000/app:1"]
    with pytest.raises(InvalidReference, match="needs name"):
        await store.add_image(manifest, config, [None], ref="app@sha256:" + "0" * 64)


async def test_removing_an_untagged_image_collects_its_blobs(tmp_path) -> None:
    store = ImageStore(tmp_path / "store")
    manifest, config, layer, _ = small_image(tmp_path)
    digest = sha256_digest(manifest)
    await store.add_image(manifest, config, [layer], ref=f"app@{digest}")
    assert await store.remove(f"app@{digest}")
    assert list(store.blobs.iterdir()) == []
