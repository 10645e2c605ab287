"""Typed API objects over a KVStore: JSON values, compare-and-swap on resourceVersion.

``metadata.resourceVersion`` is never stored: it is the key's mod_revision, set on every
object read (and on what create/update return). Every write compares it, so a writer that
read an old version loses with Conflict instead of overwriting someone else's change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from controller.store.errors import AlreadyExists, Compacted, Conflict, NotFound, StoreError
from controller.store.keys import ROOT, kind_prefix, object_key, parse_key
from controller.store.kv import Compare, Delete, KeyValue, KVEvent, KVStore, Put
from skiff.models.codec import decode, encode
from skiff.models.kinds import Kind, kind_of

log = logging.getLogger(__name__)

_DELETE_ATTEMPTS = 5


@dataclass(frozen=True)
class WatchEvent:
    type: Literal["ADDED", "MODIFIED", "DELETED"]
    # For DELETED: the last stored state, with resourceVersion set to the deletion's.
    object: Any
    revision: int


@dataclass(frozen=True)
class CreateOp:
    obj: Any


@dataclass(frozen=True)
class UpdateOp:
    obj: Any


@dataclass(frozen=True)
class DeleteOp:
    kind: Kind
    name: str
    app: str | None = None
    resource_version: int | None = None  # None: whatever version is stored


CommitOp = CreateOp | UpdateOp | DeleteOp


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _new_uid() -> str:
    return str(uuid.uuid4())


def _shown(key: str) -> str:
    """Keys in errors read as ``tasks/web/api.1.x``: users never see etcd's layout."""
    return key.removeprefix(ROOT)


def _with_meta(obj: Any, **changes: Any) -> Any:
    return dataclasses.replace(obj, metadata=dataclasses.replace(obj.metadata, **changes))


def _compare_failed(key: str, expected: int, current: KeyValue | None) -> StoreError:
    """Why a compare on ``key`` failed: it is gone (NotFound) or it moved on (Conflict)."""
    if current is None:
        return NotFound(_shown(key))
    return Conflict(_shown(key), expected, current.mod_revision)


def key_of(obj: Any) -> str:
    """The etcd key of an API object, from its kind, app and name."""
    kind = kind_of(obj)
    # A cluster-scoped object may name the app that made it (a Network): that is who owns
    # it, not part of where it lives.
    return object_key(kind, obj.metadata.name, obj.metadata.app if kind.namespaced else None)


def _op_key(op: CommitOp) -> str:
    if isinstance(op, DeleteOp):
        return object_key(op.kind, op.name, op.app)
    if isinstance(op, CreateOp | UpdateOp):
        return key_of(op.obj)
    raise TypeError(f"not a commit op: {op!r}")


_META_OPEN = b'{"metadata":{'


class ObjectStore:
    def __init__(self, kv: KVStore, clock: Callable[[], datetime] = _utc_now,
                 new_uid: Callable[[], str] = _new_uid) -> None:
        self.kv = kv
        self.clock = clock
        self.new_uid = new_uid

    # -- encoding -------------------------------------------------------------------

    @staticmethod
    def _encode(obj: Any) -> bytes:
        data = encode(obj)
        data["metadata"].pop("resourceVersion", None)
        return json.dumps(data, separators=(",", ":")).encode()

    @staticmethod
    def _decode(kind: Kind, kv: KeyValue) -> Any:
        """The object stored in ``kv``; raises ValueError (DecodeError) if it is not one."""
        obj = decode(kind.cls, json.loads(kv.value))
        return _with_meta(obj, resource_version=kv.mod_revision)

    def _decode_or_skip(self, kind: Kind, kv: KeyValue) -> Any | None:
        # One bad value (an old schema, a hand edit, a stray key) must not take down
        # every list and watch of its kind: it is logged and left out.
        try:
            if parse_key(kv.key)[0] != kind:
                raise ValueError(f"not a {kind.name} key")
            return self._decode(kind, kv)
        except ValueError as exc:  # DecodeError and JSON errors are ValueErrors
            log.warning("skipping %s at revision %d: cannot decode: %s",
                        _shown(kv.key), kv.mod_revision, exc)
            return None

    def _prepare_create(self, obj: Any) -> Any:
        # A fresh uid on every create, even if the caller sent one: owners are matched
        # by uid, so a recreated object must never pass for its predecessor.
        meta = obj.metadata
        return _with_meta(obj, uid=self.new_uid(), created_at=rfc3339(self.clock()),
                          generation=meta.generation or 1, resource_version=0)

    @staticmethod
    def _rv_for_update(obj: Any, key: str) -> int:
        rv = obj.metadata.resource_version
        if not rv:
            raise ValueError(f"update of {_shown(key)} needs metadata.resourceVersion "
                             "(read the object, change it, write it back)")
        return int(rv)

    # -- reads ----------------------------------------------------------------------

    async def get(self, kind: Kind, name: str, app: str | None = None) -> Any:
        key = object_key(kind, name, app)
        kv = await self.kv.get(key)
        if kv is None:
            raise NotFound(_shown(key))
        try:
            return self._decode(kind, kv)
        except ValueError as exc:
            raise StoreError(f"{_shown(key)}: stored value cannot be decoded: {exc}") from exc

    async def list(self, kind: Kind, app: str | None = None) -> tuple[list[Any], int]:
        """Every object of ``kind`` (of ``app``) from one read, sorted by key, and the
        revision it was read at: watch from there to miss nothing."""
        kvs, revision = await self.kv.range(kind_prefix(kind, app))
        objs = [self._decode_or_skip(kind, kv) for kv in kvs]
        return [o for o in objs if o is not None], revision

    # The API serves stored JSON as it is (plus resourceVersion): decoding to models and
    # encoding again would cost ten times the etcd read on a large list.

    @staticmethod
    def _raw(kv: KeyValue) -> dict[str, Any] | None:
        try:
            data = json.loads(kv.value)
            data["metadata"]["resourceVersion"] = kv.mod_revision
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("skipping %s: not an object: %s", _shown(kv.key), exc)
            return None
        return data if isinstance(data, dict) else None

    async def get_raw(self, kind: Kind, name: str, app: str | None = None) -> dict[str, Any]:
        key = object_key(kind, name, app)
        kv = await self.kv.get(key)
        data = self._raw(kv) if kv is not None else None
        if data is None:
            raise NotFound(_shown(key))
        return data

    async def list_raw(self, kind: Kind, app: str | None = None
                       ) -> tuple[list[dict[str, Any]], int]:
        kvs, revision = await self.kv.range(kind_prefix(kind, app))
        items = [self._raw(kv) for kv in kvs]
        return [i for i in items if i is not None], revision

    async def list_json(self, kind: Kind, app: str | None = None
                        ) -> tuple[list[bytes], int]:
        """Each stored object as JSON bytes with its resourceVersion, without parsing.

        Values are written by ``_encode`` and so begin with ``{"metadata":{``; the
        version is spliced in right there. Anything else is parsed the slow way.
        """
        kvs, revision = await self.kv.range(kind_prefix(kind, app))
        out = []
        for kv in kvs:
            if kv.value.startswith(_META_OPEN):
                out.append(b'%s"resourceVersion":%d,%s' % (
                    _META_OPEN, kv.mod_revision, kv.value[len(_META_OPEN):]))
            elif (data := self._raw(kv)) is not None:
                out.append(json.dumps(data, separators=(",", ":")).encode())
        return out, revision

    async def check_history(self, revision: int) -> None:
        """Raise Compacted if history at ``revision`` is gone, so a watch from it can be
        refused up front; reads an empty range at that revision, which costs nothing."""
        if revision <= 0:
            return
        try:
            await self.kv.range(ROOT + "\x00history-probe/", revision=revision)
        except Compacted as exc:
            raise Compacted(revision, exc.compact_revision) from None
        except ValueError:
            pass  # a future revision: the watch will wait for it

    # -- writes ---------------------------------------------------------------------

    async def create(self, obj: Any, lease: int = 0) -> Any:
        """Store a new object (gone with ``lease``, if given); AlreadyExists if its key is
        taken. Returns it as stored."""
        key = key_of(obj)
        new = self._prepare_create(obj)
        result = await self.kv.txn([Compare(key, 0)], [Put(key, self._encode(new), lease)])
        if not result.succeeded:
            raise AlreadyExists(_shown(key))
        return _with_meta(new, resource_version=result.revision)

    async def update(self, obj: Any) -> Any:
        """Replace an object if it is still at ``obj.metadata.resource_version``."""
        key = key_of(obj)
        rv = self._rv_for_update(obj, key)
        result = await self.kv.txn([Compare(key, rv)], [Put(key, self._encode(obj))])
        if not result.succeeded:
            raise _compare_failed(key, rv, await self.kv.get(key))
        return _with_meta(obj, resource_version=result.revision)

    async def delete(self, kind: Kind, name: str, app: str | None = None,
                     resource_version: int | None = None) -> int:
        """Delete an object (only at ``resource_version`` if given); returns the revision."""
        key = object_key(kind, name, app)
        if resource_version is not None:
            result = await self.kv.txn([Compare(key, resource_version)], [Delete(key)])
            if not result.succeeded:
                raise _compare_failed(key, resource_version, await self.kv.get(key))
            return result.revision
        # No version given: delete whatever is there, but still through a compare, so
        # "it was not there" (NotFound) is told apart from "it changed meanwhile" (retry).
        for _ in range(_DELETE_ATTEMPTS):
            current = await self.kv.get(key)
            if current is None:
                raise NotFound(_shown(key))
            result = await self.kv.txn([Compare(key, current.mod_revision)], [Delete(key)])
            if result.succeeded:
                return result.revision
        raise Conflict(_shown(key), current.mod_revision)

    async def commit(self, ops: Sequence[CommitOp]) -> int:
        """Apply creates, updates and deletes in one transaction: all or nothing.

        Returns the revision of the write. If any compare fails nothing is written and
        the first op whose key moved raises AlreadyExists, NotFound or Conflict. A
        DeleteOp without resource_version compares against the version read just before.
        """
        keys = [_op_key(op) for op in ops]
        if len(set(keys)) != len(keys):
            raise ValueError("a commit may touch each object only once")
        compares: list[Compare] = []
        writes: list[Put | Delete] = []
        for op, key in zip(ops, keys, strict=True):
            if isinstance(op, CreateOp):
                rv = 0
                writes.append(Put(key, self._encode(self._prepare_create(op.obj))))
            elif isinstance(op, UpdateOp):
                rv = self._rv_for_update(op.obj, key)
                writes.append(Put(key, self._encode(op.obj)))
            else:  # DeleteOp (_op_key refused anything else)
                if op.resource_version is not None:
                    rv = op.resource_version
                else:
                    current = await self.kv.get(key)
                    if current is None:
                        raise NotFound(_shown(key))
                    rv = current.mod_revision
                writes.append(Delete(key))
            compares.append(Compare(key, rv))
        result = await self.kv.txn(compares, writes)
        if result.succeeded:
            return result.revision
        for op, c in zip(ops, compares, strict=True):
            key, rv = c.key, c.mod_revision
            current = await self.kv.get(key)
            actual = current.mod_revision if current else 0
            if actual == rv:
                continue
            if isinstance(op, CreateOp):
                raise AlreadyExists(_shown(key))
            raise _compare_failed(key, rv, current)
        # Every key is back where we expected (changed and changed back in between).
        raise Conflict(_shown(keys[0]), compares[0].mod_revision)

    # -- watch ----------------------------------------------------------------------

    async def watch(self, kind: Kind, app: str | None = None,
                    resource_version: int = 0) -> AsyncIterator[WatchEvent]:
        """Changes to ``kind`` (of ``app``) after ``resource_version`` (0: from now).

        Raises Compacted when that revision's history is gone: list, then watch from
        the list's revision.
        """
        start = resource_version + 1 if resource_version else 0
        events = self.kv.watch(kind_prefix(kind, app), start)
        async with contextlib.aclosing(events):
            while True:
                try:
                    ev = await anext(events)
                except StopAsyncIteration:
                    return
                except Compacted as exc:
                    # The KV speaks in "from revision", callers in "after resourceVersion".
                    raise Compacted(max(exc.requested - 1, resource_version),
                                    exc.compact_revision) from exc
                out = self._event(kind, ev)
                if out is not None:
                    yield out

    def _event(self, kind: Kind, ev: KVEvent) -> WatchEvent | None:
        if ev.type == "DELETE" and not ev.value:
            # etcd lost the previous value to compaction: we cannot say what was
            # deleted, so the watcher must relist to learn it.
            raise Compacted(ev.revision - 1)
        obj = self._decode_or_skip(kind, KeyValue(ev.key, ev.value, ev.revision,
                                                  ev.create_revision))
        if obj is None:
            return None
        if ev.type == "DELETE":
            return WatchEvent("DELETED", obj, ev.revision)
        return WatchEvent("ADDED" if ev.create_revision == ev.revision else "MODIFIED",
                          obj, ev.revision)

    # -- leases ---------------------------------------------------------------------

    async def grant_lease(self, ttl: int) -> int:
        return await self.kv.grant_lease(ttl)

    async def keepalive(self, lease_id: int) -> int:
        return await self.kv.keepalive(lease_id)

    async def revoke_lease(self, lease_id: int) -> None:
        await self.kv.revoke_lease(lease_id)
