"""Typed store errors: callers decide by type, never by message text."""

from __future__ import annotations


class StoreError(Exception):
    pass


class NotFound(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"{key} not found")
        self.key = key


class AlreadyExists(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"{key} already exists")
        self.key = key


class Conflict(StoreError):
    """A compare-and-swap lost: the object changed since it was read."""

    def __init__(self, key: str, expected: int, actual: int | None = None) -> None:
        detail = f" (now {actual})" if actual is not None else ""
        super().__init__(
            f"{key} was modified: expected resourceVersion {expected}{detail}; "
            "read it again and retry")
        self.key = key
        self.expected = expected
        self.actual = actual


class Compacted(StoreError):
    """History at the requested revision was compacted away: relist, then watch."""

    def __init__(self, requested: int, compact_revision: int = 0) -> None:
        # etcd names the compact revision to a watch, not to a read: 0 means "not told".
        upto = f" up to {compact_revision}" if compact_revision > 0 else ""
        super().__init__(
            f"resourceVersion {requested} is too old (history compacted{upto}); "
            "list again and watch from the list's resourceVersion")
        self.requested = requested
        self.compact_revision = compact_revision


class LeaseNotFound(StoreError):
    """A write named a lease that expired or was revoked (or never existed)."""

    def __init__(self, lease_id: int) -> None:
        super().__init__(f"lease {lease_id:x} not found (expired or revoked)")
        self.lease_id = lease_id


class Unavailable(StoreError):
    """etcd could not be reached or did not answer in time."""
