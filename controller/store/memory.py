"""An in-memory KVStore with etcd's revision semantics, for unit tests of logic above it.

What it keeps from etcd, because code above the store depends on it:
- one global revision, +1 per transaction that changes something (all its ops share it);
  a failed compare or a no-op changes nothing;
- per key mod_revision and create_revision; ranges at an older revision (MVCC);
- watches from an old revision replay history, then follow live changes; compaction
  makes reads and watches before the compact revision raise Compacted;
- leases whose TTL runs on an injected clock: expiry is checked on every call (and by
  ``expire_leases()``), so tests advance a fake clock instead of sleeping.
Integration tests use real etcd; nothing in production uses this.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from controller.store.errors import Compacted, LeaseNotFound, Unavailable
from controller.store.kv import Compare, Delete, KeyValue, KVEvent, Op, Put, TxnResult


@dataclass(frozen=True)
class _Version:
    mod_revision: int
    create_revision: int
    value: bytes | None  # None: the key was deleted at mod_revision
    lease: int = 0


@dataclass
class _Lease:
    ttl: int
    expires_at: float
    keys: set[str] = field(default_factory=set)


@dataclass(eq=False)
class _Watcher:
    prefix: str
    queue: asyncio.Queue[KVEvent | Exception] = field(default_factory=asyncio.Queue)


class MemoryKV:
    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 min_lease_ttl: int = 1) -> None:
        self._clock = clock
        self._min_lease_ttl = min_lease_ttl  # etcd raises small TTLs to its minimum too
        self._revision = 1  # an empty etcd is at revision 1
        self._compacted = 0
        self._versions: dict[str, list[_Version]] = {}
        self._history: list[KVEvent] = []
        self._leases: dict[int, _Lease] = {}
        self._next_lease = 1
        self._watchers: set[_Watcher] = set()
        self._closed = False

    @property
    def revision(self) -> int:
        return self._revision

    @property
    def compact_revision(self) -> int:
        return self._compacted

    @property
    def watch_count(self) -> int:
        """Open watches: a test can check that a consumer closed its watch."""
        return len(self._watchers)

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("MemoryKV is closed")
        self.expire_leases()

    def _latest(self, key: str) -> _Version | None:
        versions = self._versions.get(key)
        if not versions or versions[-1].value is None:
            return None
        return versions[-1]

    @staticmethod
    def _kv(key: str, v: _Version) -> KeyValue:
        assert v.value is not None
        return KeyValue(key, v.value, v.mod_revision, v.create_revision, v.lease)

    async def get(self, key: str) -> KeyValue | None:
        self._check_open()
        v = self._latest(key)
        return self._kv(key, v) if v else None

    async def range(self, prefix: str, revision: int = 0) -> tuple[list[KeyValue], int]:
        self._check_open()
        at = revision or self._revision
        if at < self._compacted:
            raise Compacted(at, self._compacted)
        if at > self._revision:
            raise ValueError(f"revision {at} is in the future (now {self._revision})")
        out = []
        for key in sorted(k for k in self._versions if k.startswith(prefix)):
            versions = self._versions[key]
            i = bisect.bisect_right([v.mod_revision for v in versions], at)
            if i and versions[i - 1].value is not None:
                out.append(self._kv(key, versions[i - 1]))
        return out, at

    async def txn(self, compares: list[Compare], ops: list[Op]) -> TxnResult:
        self._check_open()
        keys = [op.key for op in ops]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate key given in txn request")  # as etcd refuses it
        for c in compares:
            current = self._latest(c.key)
            if (current.mod_revision if current else 0) != c.mod_revision:
                return TxnResult(False, self._revision)
        for op in ops:
            if isinstance(op, Put) and op.lease and op.lease not in self._leases:
                raise LeaseNotFound(op.lease)
        return TxnResult(True, self._apply(ops))

    def _apply(self, ops: list[Op]) -> int:
        """Apply ops at the next revision; the revision moves only if something changed."""
        rev = self._revision + 1
        events: list[KVEvent] = []
        for op in ops:
            current = self._latest(op.key)
            if current is not None and current.lease in self._leases:
                self._leases[current.lease].keys.discard(op.key)
            if isinstance(op, Put):
                create = current.create_revision if current else rev
                self._versions.setdefault(op.key, []).append(
                    _Version(rev, create, op.value, op.lease))
                if op.lease:
                    self._leases[op.lease].keys.add(op.key)
                events.append(KVEvent("PUT", op.key, op.value, rev, create))
            elif isinstance(op, Delete) and current is not None:
                self._versions[op.key].append(_Version(rev, current.create_revision, None))
                assert current.value is not None
                events.append(KVEvent("DELETE", op.key, current.value, rev))
        if not events:
            return self._revision
        self._revision = rev
        self._history.extend(events)
        for w in self._watchers:
            for ev in events:
                if ev.key.startswith(w.prefix):
                    w.queue.put_nowait(ev)
        return rev

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[KVEvent]:
        self._check_open()
        start = start_revision or self._revision + 1
        if start < self._compacted:
            raise Compacted(start, self._compacted)
        # Take the backlog and register in one step (no await between), so no change
        # falls between history and live events.
        i = bisect.bisect_left([e.revision for e in self._history], start)
        backlog = [e for e in self._history[i:] if e.key.startswith(prefix)]
        watcher = _Watcher(prefix)
        self._watchers.add(watcher)
        try:
            for ev in backlog:
                yield ev
            while True:
                item = await watcher.queue.get()
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self._watchers.discard(watcher)

    async def grant_lease(self, ttl: int) -> int:
        self._check_open()
        ttl = max(ttl, self._min_lease_ttl)
        lease_id = self._next_lease
        self._next_lease += 1
        self._leases[lease_id] = _Lease(ttl, self._clock() + ttl)
        return lease_id

    async def keepalive(self, lease_id: int) -> int:
        self._check_open()
        lease = self._leases.get(lease_id)
        if lease is None:
            return 0
        lease.expires_at = self._clock() + lease.ttl
        return lease.ttl

    async def revoke_lease(self, lease_id: int) -> None:
        self._check_open()
        self._revoke(lease_id)

    def _revoke(self, lease_id: int) -> None:
        lease = self._leases.pop(lease_id, None)
        if lease is not None:
            # etcd deletes a lease's keys in one transaction, hence one revision.
            self._apply([Delete(k) for k in sorted(lease.keys)])

    def expire_leases(self) -> list[int]:
        """Revoke every lease whose TTL ran out on the clock; returns their ids."""
        now = self._clock()
        expired = [i for i, lease in self._leases.items() if lease.expires_at <= now]
        for lease_id in expired:
            self._revoke(lease_id)
        return expired

    async def compact(self, revision: int) -> None:
        self._check_open()
        if revision > self._revision:
            raise ValueError(f"revision {revision} is in the future (now {self._revision})")
        if revision <= self._compacted:
            return
        for key in list(self._versions):
            versions = self._versions[key]
            i = bisect.bisect_right([v.mod_revision for v in versions], revision)
            # Keep what a read at ``revision`` or later needs: the last version at or
            # before it (unless that is a deletion) and everything after it.
            keep = versions[i - 1:] if i else versions
            if keep and keep[0].value is None and keep[0].mod_revision <= revision:
                keep = keep[1:]
            if keep:
                self._versions[key] = keep
            else:
                del self._versions[key]
        self._history = [e for e in self._history if e.revision >= revision]
        self._compacted = revision

    async def close(self) -> None:
        self._closed = True
        for w in self._watchers:
            w.queue.put_nowait(Unavailable("MemoryKV is closed"))
