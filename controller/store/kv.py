"""The narrow key-value contract the control plane needs from etcd.

Four write shapes only (as kine does): create (mod_revision == 0), update
(mod_revision == X), delete, and leases. A failed compare is an answer, not an error:
``txn`` returns ``succeeded=False``. EtcdKV implements it for real; MemoryKV serves the
unit tests of logic above it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int
    lease: int = 0


@dataclass(frozen=True)
class KVEvent:
    """One change. For a DELETE, ``value`` is the value before deletion (may be b"")."""

    type: Literal["PUT", "DELETE"]
    key: str
    value: bytes
    revision: int  # the mod_revision of the change
    create_revision: int = 0  # equals ``revision`` when a PUT created the key


@dataclass(frozen=True)
class Compare:
    """Holds when ``key``'s mod_revision equals ``mod_revision`` (0: key absent)."""

    key: str
    mod_revision: int


@dataclass(frozen=True)
class Put:
    key: str
    value: bytes
    lease: int = 0


@dataclass(frozen=True)
class Delete:
    key: str


Op = Put | Delete


@dataclass(frozen=True)
class TxnResult:
    succeeded: bool
    revision: int  # the store's revision after the transaction (or at the failed compare)


class KVStore(Protocol):
    async def get(self, key: str) -> KeyValue | None: ...

    async def range(self, prefix: str, revision: int = 0) -> tuple[list[KeyValue], int]:
        """All keys under ``prefix`` at one revision (0: latest), sorted by key,
        with the revision they were read at."""
        ...

    async def txn(self, compares: list[Compare], ops: list[Op]) -> TxnResult: ...

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[KVEvent]:
        """Changes under ``prefix`` from ``start_revision`` (inclusive; 0: from now), forever.

        Survives reconnects by resuming after the last revision it delivered. Raises
        ``Compacted`` when history at ``start_revision`` is gone: relist, then watch.
        """
        ...

    async def grant_lease(self, ttl: int) -> int: ...

    async def keepalive(self, lease_id: int) -> int:
        """Refresh a lease; returns the remaining TTL, 0 if the lease is gone."""
        ...

    async def revoke_lease(self, lease_id: int) -> None: ...

    async def compact(self, revision: int) -> None: ...

    async def close(self) -> None: ...
