"""The layer cache: what a step produced, found again by a key of what it depended on.

    <store>/build-cache/entries/<key hex>.json   {"layer", "config", "history", "created",
                                                  "author"}: the step's effect
    <store>/build-cache/blobs/<hex>              gzip layer blobs of cached steps
    <store>/build-cache/tmp/                     blobs being written

The key (`step_key`) is the sha256 of: the parent state's id (layer chain + config +
history, see state.py), the instruction after variable expansion (without its line number,
so moving an instruction or editing a comment keeps the cache), and what else the step
sees: for RUN the ARG values in scope (ENV is in the config already); for COPY and ADD
the digest of every source file's path, type, mode and content (`sources.tree_digest`),
and the id of the `--from` state.

Decision: file mtimes are not in the key, as in Docker's classic builder and BuildKit: a
`touch` or a fresh checkout must not invalidate the cache. A hit reuses the layer as first
built, mtimes included.

Layers live in their own blobs dir rather than the store's blobs/, because the store
collects blobs no tagged image references, and a cache entry must survive the gc that
follows `skiff rmi`. An entry whose blob went missing anyway is a miss. Entries are
written atomically, so concurrent builds (other processes included) share them safely.

`skiff builder prune` (`prune`) removes entries, all or those unused for a while (a hit
touches its entry), then the blobs no remaining entry references.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.build.state import ImageState, LayerRef
from agent.images import fsutil
from agent.images.oci import canonical_json, digest_hex
from skiff.build import instructions as ins

CACHE_VERSION = 1


def instruction_key(instruction: ins.Instruction) -> dict[str, Any]:
    """The expanded instruction as cache-key data: every field but its line and text."""
    fields = {f.name: getattr(instruction, f.name) for f in dataclasses.fields(instruction)
              if f.name not in ("line", "original")}
    out: dict[str, Any] = {"keyword": instruction.keyword}
    for name, value in fields.items():
        if dataclasses.is_dataclass(value) and isinstance(value, ins.Instruction):
            out[name] = instruction_key(value)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            out[name] = dataclasses.asdict(value)
        else:
            out[name] = value
    return out


def step_key(parent: ImageState, instruction: ins.Instruction,
             extra: Mapping[str, Any] | None = None) -> str:
    data = {"v": CACHE_VERSION, "parent": parent.state_id(),
            "instruction": instruction_key(instruction), "extra": dict(extra or {})}
    return "sha256:" + hashlib.sha256(canonical_json(data)).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    layer: LayerRef | None
    config: Mapping[str, Any]
    history: Mapping[str, Any] | None
    created: str | None
    author: str | None = None

    def apply(self, parent: ImageState) -> ImageState:
        return parent.then(layer=self.layer, config=self.config, history=self.history,
                           created=self.created, author=self.author)

    def to_json(self) -> dict[str, Any]:
        return {"layer": self.layer.to_json() if self.layer else None,
                "config": dict(self.config),
                "history": dict(self.history) if self.history is not None else None,
                "created": self.created, "author": self.author}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> CacheEntry:
        layer = obj.get("layer")
        return cls(LayerRef.from_json(layer) if layer else None, dict(obj["config"]),
                   obj.get("history"), obj.get("created"), obj.get("author"))


class BuildCache:
    """Blocking: call from a thread."""

    def __init__(self, store_root: Path) -> None:
        self.root = Path(store_root) / "build-cache"
        self.entries = self.root / "entries"
        self.blobs = self.root / "blobs"
        self.tmp = self.root / "tmp"

    def open(self) -> None:
        for d in (self.entries, self.blobs, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        fsutil.clean_stale_temps(self.tmp)

    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest_hex(digest)

    def temp_path(self, suffix: str = "") -> Path:
        return self.tmp / fsutil.temp_name(suffix)

    def _entry_path(self, key: str) -> Path:
        return self.entries / f"{digest_hex(key)}.json"

    def get(self, key: str, blob_exists: Any = None) -> CacheEntry | None:
        """The entry for `key`, if any and if its layer blob is still here (in the cache's
        blobs, or wherever `blob_exists(digest)` finds it)."""
        path = self._entry_path(key)
        try:
            entry = CacheEntry.from_json(json.loads(path.read_bytes()))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing, or torn by a crash: rebuild the step
        if entry.layer is not None:
            digest = entry.layer.descriptor.digest
            if not self.blob_path(digest).is_file() and not (
                    blob_exists is not None and blob_exists(digest)):
                return None
        with contextlib.suppress(OSError):
            os.utime(path)  # last used: what `prune --until` goes by
        return entry

    def put(self, key: str, entry: CacheEntry) -> None:
        fsutil.write_atomic(self._entry_path(key), canonical_json(entry.to_json()), self.tmp)

    def adopt_blob(self, tmp: Path, digest: str) -> Path:
        """Move a written layer blob in under its digest (an equal one may be there)."""
        final = self.blob_path(digest)
        if final.exists():
            tmp.unlink(missing_ok=True)
        else:
            os.replace(tmp, final)
        return final

    def prune(self, unused_for: float | None = None, now: float | None = None) -> PruneResult:
        """Remove entries unused for `unused_for` seconds (all if None), then every
        cache blob no remaining entry references. Meant for when no build runs on the
        store: a build racing it loses hits (an entry whose blob went is a miss) and at
        worst fails, to be run again."""
        now = time.time() if now is None else now
        entries = removed = freed = 0
        keep: set[str] = set()
        for path in sorted(self.entries.glob("*.json")):
            entries += 1
            kept = self._kept_layer(path, now - unused_for) if unused_for is not None \
                else None
            if kept is not None:
                keep.update(kept)
                continue
            with contextlib.suppress(FileNotFoundError):
                freed += path.stat().st_size
                path.unlink()
                removed += 1
        blobs = 0
        for blob in self.blobs.iterdir():
            if blob.name in keep:
                continue
            with contextlib.suppress(FileNotFoundError):
                freed += blob.stat().st_size
                blob.unlink()
                blobs += 1
        return PruneResult(removed, entries - removed, blobs, freed)

    @staticmethod
    def _kept_layer(path: Path, cutoff: float) -> set[str] | None:
        """The blob names a recent, readable entry needs; None if it is to go."""
        try:
            if path.stat().st_mtime < cutoff:
                return None
            entry = CacheEntry.from_json(json.loads(path.read_bytes()))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # unreadable: a miss anyway
        return {digest_hex(entry.layer.descriptor.digest)} if entry.layer else set()


@dataclass(frozen=True)
class PruneResult:
    entries_removed: int
    entries_kept: int
    blobs_removed: int
    bytes_freed: int
