"""The thin loop around a reconciler: take a key, reconcile, retry with back-off.

Subclasses implement ``reconcile(key)`` (read caches, plan with a pure function, write
with compare-and-swap) and ``all_keys()`` for the periodic resync that repairs what
events missed. Any exception re-queues the key; nothing escapes the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable, Iterable

from controller.reconcilers.workqueue import WorkQueue
from controller.store.errors import Conflict

log = logging.getLogger(__name__)

RESYNC_SECONDS = 30.0


class Reconciler:
    name = "reconciler"

    def __init__(self, workers: int = 2, resync: float = RESYNC_SECONDS) -> None:
        self.queue = WorkQueue()
        self.workers = workers
        self.resync = resync

    async def reconcile(self, key: Hashable) -> None:
        raise NotImplementedError

    def all_keys(self) -> Iterable[Hashable]:
        return ()

    def enqueue(self, key: Hashable) -> None:
        self.queue.add(key)

    def enqueue_after(self, key: Hashable, seconds: float) -> None:
        """For work that waits on time rather than an event (a rollout's monitor)."""
        asyncio.get_running_loop().call_later(seconds, self.queue.add, key)

    def enqueue_soon(self, key: Hashable) -> None:
        """For events that come in bursts: coalesced into one reconcile shortly after."""
        self.queue.add_soon(key)

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self.reconcile(key)
                self.queue.forget(key)
            except asyncio.CancelledError:
                raise
            except Conflict as exc:
                # Normal under concurrency: our cache was behind; try again soon.
                log.debug("%s %s: %s", self.name, key, exc)
                self.queue.retry(key)
            except Exception:
                delay = self.queue.retry(key)
                log.exception("%s %s failed; retrying in %.2fs", self.name, key, delay)
            finally:
                self.queue.done(key)

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.resync)
            for key in self.all_keys():
                self.enqueue(key)

    async def run(self) -> None:
        for key in self.all_keys():
            self.enqueue(key)
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self.workers):
                    group.create_task(self._worker())
                group.create_task(self._resync())
        finally:
            self.queue.close()
