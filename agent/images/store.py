"""The node's image store: an OCI image layout on disk, plus unpacked layers.

    <root>/oci-layout            {"imageLayoutVersion": "1.0.0"}
    <root>/index.json            OCI image index: one manifest descriptor per tag, the tag
                                 (`busybox:latest`, `localhost:5000/app:v2`) in the
                                 org.opencontainers.image.ref.name annotation; no refs file
    <root>/blobs/sha256/<hex>    manifests, configs, layers; named by their sha256
    <root>/layers/<hex>/         a layer unpacked for overlayfs, named by its diff_id
    <root>/tmp/                  temp files and dirs, named <pid>.<random>...; leftovers of
                                 dead processes are removed when a store opens
    <root>/lock                  flock taken around index updates and garbage collection

So `skopeo copy oci:<root>:busybox:latest ...` can read the store as is.

Safety: a blob is verified against its digest and size before it is renamed into
blobs/; blobs enter blobs/ before the index names them; index.json is replaced by rename,
never rewritten in place. So a crash leaves at worst unreferenced blobs (collected at the
next removal or gc()), never an index naming a missing or torn blob. One asyncio lock
orders this process's writers; the flock orders writers of different processes (an agent
and deploy/make-busybox-image.sh). All blocking work runs in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from agent.images import fsutil, ingest
from agent.images.errors import ImageNotFound, InvalidImage, InvalidReference
from agent.images.models import Descriptor, Image, ImageSummary
from agent.images.oci import (
    ANNOTATION_REF,
    MAX_BLOB_BYTES,
    MAX_CONFIG_BYTES,
    MAX_INDEX_BYTES,
    MAX_MANIFEST_BYTES,
    MT_OCI_INDEX,
    OCI_LAYOUT_VERSION,
    Manifest,
    ParsedConfig,
    digest_hex,
    load_json,
    parse_config,
    parse_descriptor,
    parse_manifest,
    sha256_digest,
)
from agent.images.refs import is_digest, parse_ref

log = logging.getLogger(__name__)
T = TypeVar("T")

BlobSource = ingest.BlobSource


@dataclass(frozen=True)
class GcResult:
    blobs: int
    layers: int


class ImageStore:
    """One node's images under `root` (layout in the module docstring). Cheap to make;
    the layout is created on first use. Safe for concurrent use from one event loop, and
    alongside other processes using the same root."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.layers = self.root / "layers"
        self.tmp = self.root / "tmp"
        self._lock = asyncio.Lock()
        self._ready = False
        self._parsed: dict[str, tuple[Manifest, ParsedConfig]] = {}
        # diff_id hexes this process is unpacking (unpack.py counts): gc keeps them.
        self.busy_layers: Counter[str] = Counter()

    # ---- paths ------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest_hex(digest)

    def layer_path(self, diff_id: str) -> Path:
        return self.layers / digest_hex(diff_id, "diff_id")

    def temp_path(self, suffix: str = "") -> Path:
        """A fresh path in tmp/: write a blob here and pass it to add_image to have it
        moved, not copied (pulls do this)."""
        return self.tmp / fsutil.temp_name(suffix)

    # ---- setup --------------------------------------------------------------------------
    async def open(self) -> None:
        """Create the layout if missing and clear dead processes' temp files. Every
        method calls it; calling it first is optional."""
        if self._ready:
            return
        async with self._lock:
            if not self._ready:
                await asyncio.to_thread(self._locked, self._init_sync)
                self._ready = True

    def _init_sync(self) -> None:
        for d in (self.blobs, self.layers, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        layout = self.root / "oci-layout"
        if not layout.exists():
            fsutil.write_atomic(layout, json.dumps(
                {"imageLayoutVersion": OCI_LAYOUT_VERSION}).encode(), self.tmp)
        if not (self.root / "index.json").exists():
            self._write_index([])
        fsutil.clean_stale_temps(self.tmp)

    def _locked(self, fn: Callable[[], T]) -> T:
        self.root.mkdir(parents=True, exist_ok=True)
        with fsutil.flocked(self.root / "lock"):
            return fn()

    async def _mutate(self, fn: Callable[[], T]) -> T:
        await self.open()
        async with self._lock:
            return await asyncio.to_thread(self._locked, fn)

    # ---- index --------------------------------------------------------------------------
    def _read_index(self) -> list[Descriptor]:
        path = self.root / "index.json"
        obj = load_json(path.read_bytes(), str(path), MAX_INDEX_BYTES)
        if obj.get("schemaVersion") != 2 or not isinstance(obj.get("manifests"), list):
            raise InvalidImage(f"{path} is not an OCI image index")
        return [parse_descriptor(d, f"{path} entry {i}")
                for i, d in enumerate(obj["manifests"])]

    def _write_index(self, entries: list[Descriptor]) -> None:
        entries = sorted(entries, key=lambda d: (d.annotations.get(ANNOTATION_REF, ""),
                                                 d.digest))
        data = json.dumps({"schemaVersion": 2, "mediaType": MT_OCI_INDEX,
                           "manifests": [d.to_json() for d in entries]},
                          indent=2, sort_keys=True).encode() + b"\n"
        fsutil.write_atomic(self.root / "index.json", data, self.tmp)

    @staticmethod
    def _tag_of(d: Descriptor) -> str | None:
        return d.annotations.get(ANNOTATION_REF)

    def _find(self, entries: list[Descriptor], ref: str) -> tuple[list[Descriptor], str]:
        """Index entries matching `ref` and the reference to report them under."""
        if is_digest(ref):
            hits = [d for d in entries if d.digest == ref]
            tag = self._tag_of(hits[0]) if hits else None
            return hits, f"{tag.rpartition(':')[0]}@{ref}" if tag else ref
        r = parse_ref(ref)
        if r.digest is not None:
            hits = [d for d in entries if d.digest == r.digest]
            same = [d for d in hits if (self._tag_of(d) or "").startswith(r.name + ":")]
            return same or hits, f"{r.name}@{r.digest}"
        return [d for d in entries if self._tag_of(d) == r.tagged], r.tagged

    # ---- reading ------------------------------------------------------------------------
    def _read_blob_verified(self, digest: str, limit: int) -> bytes:
        path = self.blob_path(digest)
        try:
            data = path.read_bytes() if path.stat().st_size <= limit else b""
        except FileNotFoundError:
            raise InvalidImage(f"blob {digest} is missing from {self.blobs}") from None
        if len(data) > limit or sha256_digest(data) != digest:
            raise InvalidImage(f"blob {digest} in {self.blobs} is corrupt or too large")
        return data

    def _load(self, digest: str) -> tuple[Manifest, ParsedConfig]:
        hit = self._parsed.get(digest)
        if hit is None:
            manifest = parse_manifest(self._read_blob_verified(digest, MAX_MANIFEST_BYTES))
            config = parse_config(self._read_blob_verified(manifest.config.digest,
                                                           MAX_CONFIG_BYTES))
            hit = self._parsed[digest] = (manifest, config)
        return hit

    def _image(self, desc: Descriptor, ref: str) -> Image:
        m, c = self._load(desc.digest)
        return Image(ref=ref, digest=desc.digest, id=m.config.digest, config=c.config,
                     layers=m.layers, diff_ids=c.diff_ids, created=c.created,
                     history=c.history, size=m.config.size + sum(x.size for x in m.layers),
                     architecture=c.architecture, os=c.os, manifest_media_type=m.media_type,
                     config_descriptor=m.config)

    def _resolve_sync(self, ref: str) -> Image | None:
        hits, shown = self._find(self._read_index(), ref)
        return self._image(hits[0], shown) if hits else None

    async def resolve(self, ref: str) -> Image | None:
        """The image under `ref` (`busybox`, `busybox:1`, `name@sha256:...`, or a bare
        manifest digest), or None. Raises InvalidReference for a malformed ref."""
        await self.open()
        return await asyncio.to_thread(self._resolve_sync, ref)

    def _list_sync(self) -> list[ImageSummary]:
        out = []
        for d in self._read_index():
            tag = self._tag_of(d)
            if tag is None:
                continue
            img = self._image(d, tag)
            out.append(ImageSummary(tag, img.digest, img.id, img.size, img.created))
        return sorted(out, key=lambda s: s.ref)

    async def list(self) -> list[ImageSummary]:
        await self.open()
        return await asyncio.to_thread(self._list_sync)

    async def read_blob(self, digest: str, limit: int = MAX_BLOB_BYTES) -> bytes:
        await self.open()
        return await asyncio.to_thread(self._read_blob_verified, digest, limit)

    # ---- tags ---------------------------------------------------------------------------
    def _set_tag(self, tag: str, desc: Descriptor) -> bool:
        """Point `tag` at `desc`; collect garbage if a manifest lost its last tag. Returns
        whether the index changed."""
        entries = self._read_index()
        old = [d for d in entries if self._tag_of(d) == tag]
        new = replace(desc, annotations={ANNOTATION_REF: tag})
        if [d.digest for d in old] == [new.digest]:
            return False
        self._write_index([d for d in entries if self._tag_of(d) != tag] + [new])
        if old:
            self._gc_sync()
        return True

    def _add_untagged(self, desc: Descriptor) -> None:
        """Keep a manifest in the index without a tag (resolvable as name@digest, not
        listed by `skiff images`), unless an entry already holds it."""
        entries = self._read_index()
        if not any(d.digest == desc.digest for d in entries):
            self._write_index([*entries, replace(desc, annotations={})])

    async def tag(self, src: str, dst: str) -> Image:
        target = parse_ref(dst)
        if target.digest is not None:
            raise InvalidReference(f"cannot tag as {dst!r}: a tag may not carry a digest")

        def run() -> Image:
            hits, _ = self._find(self._read_index(), src)
            if not hits:
                raise ImageNotFound(f"no image {src!r}")
            self._set_tag(target.tagged, hits[0])
            return self._image(hits[0], target.tagged)

        return await self._mutate(run)

    async def remove(self, ref: str) -> bool:
        """Untag `ref` (a digest ref removes every tag of that manifest), then collect
        blobs and unpacked layers nothing refers to. False if there was nothing to
        remove: removal is safe to repeat."""
        def run() -> bool:
            entries = self._read_index()
            hits, _ = self._find(entries, ref)
            if not hits:
                return False
            gone = {id(d) for d in hits}
            self._write_index([d for d in entries if id(d) not in gone])
            self._gc_sync()
            return True

        return await self._mutate(run)

    # ---- garbage collection ----------------------------------------------------------
    async def gc(self) -> GcResult:
        return await self._mutate(self._gc_sync)

    def _gc_sync(self) -> GcResult:
        """Mark what the index reaches, sweep the rest. A layer still mounted (its path in
        this mount namespace's mountinfo) or busy in this process is kept: deleting a
        lower dir under a running container would corrupt its view."""
        keep_blobs: set[str] = set()
        # dict.copy is one C call: atomic against the event loop thread updating it.
        keep_layers: set[str] = set(dict.copy(self.busy_layers))
        for d in self._read_index():
            keep_blobs.add(d.hex)
            try:
                m, c = self._load(d.digest)
            except InvalidImage as exc:
                log.warning("gc: %s: %s; keeping what it may reference", d.digest, exc)
                return GcResult(0, 0)
            keep_blobs.add(m.config.hex)
            keep_blobs.update(x.hex for x in m.layers)
            keep_layers.update(x[7:] for x in c.diff_ids)
        blobs = 0
        for path in self.blobs.iterdir():
            if path.name not in keep_blobs:
                path.unlink(missing_ok=True)
                self._parsed.pop("sha256:" + path.name, None)
                blobs += 1
        mounted = _mountinfo()
        layers = 0
        for path in self.layers.iterdir():
            if path.name in keep_layers or str(path) in mounted:
                continue
            # Rename first: a crash mid-delete must not leave a half layer under its name.
            doomed = self.temp_path("gc")
            with contextlib.suppress(FileNotFoundError):
                os.rename(path, doomed)
                fsutil.remove_tree(doomed)
                layers += 1
        return GcResult(blobs, layers)

    # ---- adding images ------------------------------------------------------------------
    async def add_image(self, manifest: bytes, config: bytes, layers: Sequence[BlobSource],
                        *, ref: str) -> Image:
        """Verify and store an image, then tag it `ref` (moving the tag if it was
        elsewhere; `name@digest` without a tag keeps it untagged). `layers` gives each
        layer's blob, in manifest order: a Path (a file under tmp/, see temp_path, is
        taken over: moved in, or deleted on failure; any other file is copied), bytes, or
        None for a blob the store already has. Every digest, size and media type is
        checked, and each layer's uncompressed digest against the config's diff_ids;
        nothing is named in the index before all of it is on disk."""
        try:
            return await self._add_image(manifest, config, layers, ref)
        finally:
            # Files in tmp/ were handed over: moved in above, or dropped here on failure.
            owned = [p for p in layers if isinstance(p, Path) and self._owned(p)]
            if owned:
                await asyncio.to_thread(ingest.discard, owned)

    async def _add_image(self, manifest: bytes, config: bytes, layers: Sequence[BlobSource],
                         ref: str) -> Image:
        r = parse_ref(ref)
        m = parse_manifest(manifest)
        digest = sha256_digest(manifest)
        if r.digest is not None and r.digest != digest:
            raise InvalidReference(f"{ref!r}: add_image needs name[:tag] or name@digest, "
                                   f"and a digest that matches the manifest's {digest}")
        if sha256_digest(config) != m.config.digest or len(config) != m.config.size:
            raise InvalidImage("config does not match the manifest's config descriptor "
                               f"{m.config.digest} ({m.config.size} bytes)")
        c = parse_config(config)
        if len(c.diff_ids) != len(m.layers) or len(layers) != len(m.layers):
            raise InvalidImage(f"manifest has {len(m.layers)} layers, config "
                               f"{len(c.diff_ids)} diff_ids, and {len(layers)} were given")
        await self.open()
        staged = await asyncio.to_thread(self._stage_all, m, c, layers)
        desc = Descriptor(m.media_type, digest, len(manifest))
        try:
            def commit() -> Image:
                for blob_digest, tmp in staged:
                    ingest.move_in(tmp, self.blob_path(blob_digest))
                ingest.put_bytes(config, self.blob_path(m.config.digest), self.temp_path())
                ingest.put_bytes(manifest, self.blob_path(digest), self.temp_path())
                fsutil.fsync_dir(self.blobs)
                if r.tag is None:  # name@digest (a pull by digest): kept, untagged
                    self._add_untagged(desc)
                    return self._image(desc, f"{r.name}@{digest}")
                self._set_tag(r.tagged, desc)
                return self._image(desc, r.tagged)

            return await self._mutate(commit)
        finally:
            await asyncio.to_thread(ingest.discard, [t for _, t in staged if t is not None])

    def _owned(self, path: Path) -> bool:
        return path.resolve().is_relative_to(self.tmp.resolve())

    def _stage_all(self, m: Manifest, c: ParsedConfig,
                   sources: Sequence[BlobSource]) -> list[tuple[str, Path | None]]:
        return ingest.stage_layers(m, c, sources, self.blob_path,
                                   lambda: self.temp_path("layer"), self._owned)

def _mountinfo() -> str:
    try:
        return Path("/proc/self/mountinfo").read_text()
    except OSError:
        return ""
