"""The agent's image GC loop around agent/images/gc_plan.py: every `interval` seconds,
read the store, ask the node which images its tasks need, remove what the plan says.
When it last saw each image in use is kept in memory: after an agent restart every
image starts as just seen, so a restart never makes an image look older than it is."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from agent.images.errors import ImageError
from agent.images.gc_plan import (
    DEFAULT_INTERVAL,
    GcPolicy,
    StoredImage,
    in_use_digests,
    plan_image_gc,
)
from agent.images.store import ImageStore

log = logging.getLogger("skiff.agent.images")


class ImageGC:
    def __init__(self, store: ImageStore, in_use: Callable[[], set[str]],
                 policy: GcPolicy | None = None, interval: float = DEFAULT_INTERVAL,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.in_use = in_use  # image refs of the node's tasks, as their specs name them
        self.policy = policy or GcPolicy()
        self.interval = interval
        self.clock = clock
        self.last_used: dict[str, float] = {}

    async def stored(self) -> list[StoredImage]:
        tags: dict[str, list[str]] = {}
        sizes: dict[str, int] = {}
        for summary in await self.store.list():
            tags.setdefault(summary.digest, []).append(summary.ref)
            sizes[summary.digest] = summary.size
        return [StoredImage(d, tuple(sorted(t)), sizes[d]) for d, t in tags.items()]

    async def run_once(self) -> list[str]:
        """One pass; the digests removed."""
        plan = plan_image_gc(await self.stored(), self.in_use(), self.clock(),
                             self.last_used, self.policy)
        self.last_used = plan.last_used
        removed = []
        for image in plan.remove:
            if image.digest in in_use_digests([image], self.in_use()):
                continue  # a task bound to this node meanwhile wants it
            try:
                if await self.store.remove(image.digest):
                    removed.append(image.digest)
                    log.info("image gc: removed %s (%s)", ", ".join(image.tags), image.digest)
            except ImageError as exc:
                log.warning("image gc: cannot remove %s: %s", image.digest, exc)
        return removed

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except (ImageError, OSError) as exc:
                log.warning("image gc pass failed: %s", exc)
            await asyncio.sleep(self.interval)

