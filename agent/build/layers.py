"""Layer blobs and unpacked layer dirs for a build.

New layers are written as reproducible gzip tars (agent/images/layerbuild) into the
build cache's blobs (cache.py says why not the store's blobs/). A layer the build stacks
under a RUN or a view is unpacked into the store's layers/<diff_id>, shared with the
runtime, from whichever blob holds it; while the build runs, its layers are counted in
the store's busy_layers so a concurrent gc keeps them."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from agent.build.cache import BuildCache
from agent.build.state import ImageState, LayerRef
from agent.images.errors import ImageNotFound
from agent.images.layerbuild import Entry, write_layer
from agent.images.store import ImageStore
from agent.images.unpack import unpack_layer


class BuildLayers:
    def __init__(self, store: ImageStore, cache: BuildCache) -> None:
        self.store = store
        self.cache = cache
        self._held: Counter[str] = Counter()
        self._locks: dict[str, asyncio.Lock] = {}

    def blob_of(self, ref: LayerRef) -> Path | None:
        for path in (self.store.blob_path(ref.descriptor.digest),
                     self.cache.blob_path(ref.descriptor.digest)):
            if path.is_file():
                return path
        return None

    def has_blob(self, digest: str) -> bool:
        return self.store.blob_path(digest).is_file() or \
            self.cache.blob_path(digest).is_file()

    def _hold(self, diff_id: str) -> None:
        name = self.store.layer_path(diff_id).name
        self._held[name] += 1
        self.store.busy_layers[name] += 1

    def release(self) -> None:
        """The build is over: its layers may be collected again."""
        for name, count in self._held.items():
            self.store.busy_layers[name] -= count
            if self.store.busy_layers[name] <= 0:
                del self.store.busy_layers[name]
        self._held.clear()

    async def ensure_dir(self, ref: LayerRef) -> Path:
        final = self.store.layer_path(ref.diff_id)
        self._hold(ref.diff_id)
        lock = self._locks.setdefault(final.name, asyncio.Lock())
        async with lock:
            if await asyncio.to_thread(final.is_dir):
                return final
            blob = await asyncio.to_thread(self.blob_of, ref)
            if blob is None:
                raise ImageNotFound(f"layer blob {ref.descriptor.digest} is gone")
            await asyncio.to_thread(unpack_layer, blob, ref.diff_id, final, self.store.tmp)
        return final

    async def lower_dirs(self, state: ImageState) -> list[Path]:
        """The state's layers as overlay lower dirs, topmost first."""
        dirs = await asyncio.gather(*(self.ensure_dir(x) for x in state.layers))
        return list(reversed(dirs))

    async def write(self, entries: Iterable[Entry]) -> LayerRef:
        """Write a layer of `entries` into the cache's blobs."""
        def run() -> LayerRef:
            tmp = self.cache.temp_path("layer")
            try:
                built = write_layer(list(entries), tmp)
                self.cache.adopt_blob(tmp, built.descriptor.digest)
            finally:
                tmp.unlink(missing_ok=True)
            return LayerRef(built.descriptor, built.diff_id)

        return await asyncio.to_thread(run)

    def blob_for_store(self, ref: LayerRef) -> Path | None:
        """Blocking: what add_image needs for this layer: None when the store has the blob,
        else a hard link in the store's tmp/ to the cache's blob (moved in, not copied)."""
        if self.store.blob_path(ref.descriptor.digest).is_file():
            return None
        source = self.cache.blob_path(ref.descriptor.digest)
        link = self.store.temp_path("build-layer")
        try:
            os.link(source, link)
        except OSError:  # another filesystem: add_image copies a path outside tmp/
            return source
        return link
