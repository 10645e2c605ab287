"""Leader election on an etcd lease: every controller serves the API, one reconciles.

The leader holds ``/skiff/leader`` under a lease it keeps alive. If keep-alive fails
for longer than the lease's TTL (etcd gone, process stalled), the key expires, this
controller stops its reconcilers, and another may take over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from controller.store.errors import StoreError
from controller.store.keys import LEADER_KEY
from controller.store.kv import Compare, KVStore, Put

log = logging.getLogger(__name__)


class LeaderElector:
    def __init__(self, kv: KVStore, identity: str, ttl: int = 10,
                 renew_every: float | None = None) -> None:
        self.kv = kv
        self.identity = identity
        self.ttl = ttl
        # Renew three times per TTL, so one slow round trip never loses the lease.
        self.renew_every = renew_every if renew_every is not None else ttl / 3
        self.is_leader = False

    async def _campaign(self) -> int | None:
        lease = await self.kv.grant_lease(self.ttl)
        result = await self.kv.txn([Compare(LEADER_KEY, 0)],
                                   [Put(LEADER_KEY, self.identity.encode(), lease)])
        if result.succeeded:
            return lease
        await self.kv.revoke_lease(lease)
        return None

    async def _hold(self, lease: int) -> None:
        """Keep the lease alive; return when it is lost."""
        deadline = asyncio.get_running_loop().time() + self.ttl
        while True:
            await asyncio.sleep(self.renew_every)
            try:
                if await self.kv.keepalive(lease) <= 0:
                    return
                deadline = asyncio.get_running_loop().time() + self.ttl
            except StoreError as exc:
                if asyncio.get_running_loop().time() >= deadline:
                    log.warning("leadership lost: %s", exc)
                    return

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Campaign forever; while leader, run ``lead()`` and cancel it on loss."""
        while True:
            try:
                lease = await self._campaign()
            except StoreError as exc:
                log.warning("leader election: %s", exc)
                await asyncio.sleep(1.0)
                continue
            if lease is None:
                await asyncio.sleep(self.renew_every)
                continue
            log.info("%s is the leader", self.identity)
            self.is_leader = True
            work = asyncio.create_task(lead())
            holder = asyncio.create_task(self._hold(lease))
            try:
                await asyncio.wait({work, holder}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self.is_leader = False
                for t in (work, holder):
                    t.cancel()
                for t in (work, holder):
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await t
                with contextlib.suppress(StoreError):
                    await self.kv.revoke_lease(lease)
            if work.done() and not work.cancelled() and work.exception() is not None:
                log.error("reconcilers stopped: %s", work.exception())
