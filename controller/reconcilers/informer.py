"""A local cache of one kind, kept current by list + watch; events only wake reconcilers.

On a compacted watch it relists and reports the difference, so handlers see every
object that changed while it was away. On any other failure it retries with back-off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from typing import Any, Literal

from controller.store.errors import Compacted, StoreError
from controller.store.objects import ObjectStore
from skiff.models.kinds import Kind
from skiff.models.objects import qualified_name

log = logging.getLogger(__name__)

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
Handler = Callable[[EventType, Any], None]


class Informer:
    def __init__(self, store: ObjectStore, kind: Kind) -> None:
        self.store = store
        self.kind = kind
        self.synced = asyncio.Event()
        self._cache: dict[str, Any] = {}
        self._handlers: list[Handler] = []
        self._revision = 0
        self._index_fns: dict[str, Callable[[Any], Hashable]] = {}
        self._indexes: dict[str, dict[Hashable, dict[str, Any]]] = {}

    def key(self, obj: Any) -> str:
        """The cache key of ``obj``: ``app/name`` for kinds that belong to an app, else
        the name (a Network names its app, but lives in the cluster)."""
        return qualified_name(obj.metadata) if self.kind.namespaced else obj.metadata.name

    def add_index(self, name: str, fn: Callable[[Any], Hashable]) -> None:
        """Keep objects grouped by ``fn(obj)`` so a reconciler finds its own quickly."""
        self._index_fns[name] = fn
        self._indexes[name] = {}
        for key, obj in self._cache.items():
            self._indexes[name].setdefault(fn(obj), {})[key] = obj

    def by_index(self, name: str, value: Hashable) -> list[Any]:
        return list(self._indexes[name].get(value, {}).values())

    def _store(self, key: str, obj: Any) -> None:
        self._unstore(key)
        self._cache[key] = obj
        for name, fn in self._index_fns.items():
            self._indexes[name].setdefault(fn(obj), {})[key] = obj

    def _unstore(self, key: str) -> None:
        old = self._cache.pop(key, None)
        if old is None:
            return
        for name, fn in self._index_fns.items():
            group = self._indexes[name].get(fn(old))
            if group is not None:
                group.pop(key, None)
                if not group:
                    del self._indexes[name][fn(old)]

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def get(self, key: str) -> Any | None:
        return self._cache.get(key)

    def items(self) -> list[Any]:
        return list(self._cache.values())

    @property
    def revision(self) -> int:
        return self._revision

    def _notify(self, event: EventType, obj: Any) -> None:
        for handler in self._handlers:
            try:
                handler(event, obj)
            except Exception:  # a faulty handler must not stop the cache
                log.exception("%s informer handler failed", self.kind.name)

    async def _relist(self) -> None:
        objs, revision = await self.store.list(self.kind)
        fresh = {self.key(o): o for o in objs}
        for key, old in list(self._cache.items()):
            if key not in fresh:
                self._unstore(key)
                self._notify("DELETED", old)
        for key, obj in fresh.items():
            old = self._cache.get(key)
            self._store(key, obj)
            if old is None:
                self._notify("ADDED", obj)
            elif old.metadata.resource_version != obj.metadata.resource_version:
                self._notify("MODIFIED", obj)
        self._revision = revision
        self.synced.set()

    async def run(self) -> None:
        delay = 0.2
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                async for ev in self.store.watch(self.kind, resource_version=self._revision):
                    key = self.key(ev.object)
                    if ev.type == "DELETED":
                        self._unstore(key)
                    else:
                        self._store(key, ev.object)
                    self._revision = ev.revision
                    self._notify(ev.type, ev.object)
                    delay = 0.2
            except Compacted:
                log.info("%s watch too old; relisting", self.kind.name)
                need_list = True
            except (StoreError, OSError) as exc:
                log.warning("%s informer: %s; retrying in %.1fs", self.kind.name, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                need_list = True
