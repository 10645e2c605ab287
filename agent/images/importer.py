"""`skiff image import`: bring an image into the store from a file or directory.

Accepted inputs, told apart by content, not by name:
- an OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/...`);
- a tar of one, optionally gzip/xz/bzip2-compressed (`skopeo copy ... oci-archive:F`,
  `docker save` from Docker 25 on, `buildctl --output type=oci`);
- a root filesystem as a directory or a tarball, wrapped into a one-layer image whose
  config has a default PATH and `Cmd ["sh"]`.

Everything is validated before anything is tagged: the layout's version, JSON shapes and
media types, every blob's sha256 and size (only `blobs/sha256/<64 hex>` paths are ever
opened, so a digest cannot name a path outside the layout), each layer's uncompressed
digest against the config's diff_ids, and every tar member against the rules in tarsafe
(no absolute paths, no `..`, nothing beneath a symlink, no hardlinks out of the archive,
no device nodes; a rootfs tarball's or directory's devices under dev/ are dropped, as the
runtime provides /dev). Limits (oci.py): JSON documents 4-8 MiB, 127 layers, 16 GiB per
blob, 64 GiB and a million entries per uncompressed layer.

A legacy `docker save` archive (manifest.json, no oci-layout) is refused with a hint.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tarfile
from pathlib import Path
from typing import IO, cast

from agent.images import fsutil
from agent.images.compress import open_uncompressed
from agent.images.errors import InvalidImage, InvalidReference, UnsafeArchive, UnsupportedImage
from agent.images.layerbuild import BuiltLayer, LayerWriter, entries_from_dir, write_layer
from agent.images.models import Descriptor, Image
from agent.images.oci import (
    ANNOTATION_REF,
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_BLOB_BYTES,
    MAX_CONFIG_BYTES,
    MAX_INDEX_BYTES,
    MAX_MANIFEST_BYTES,
    digest_hex,
    host_platform,
    load_json,
    make_config,
    make_manifest,
    parse_descriptor,
    parse_manifest,
    sha256_digest,
)
from agent.images.refs import parse_ref
from agent.images.store import ImageStore
from agent.images.tarsafe import ArchiveChecker, clean_name

DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ROOTFS_CREATED = "1970-01-01T00:00:00Z"


async def import_image(store: ImageStore, path: Path, ref: str | None = None) -> Image:
    """Import `path` and tag it `ref`. Without `ref`, an OCI layout's single
    org.opencontainers.image.ref.name annotation names it, if it is a full reference."""
    path = Path(path)
    if ref is not None:
        parse_ref(ref)  # fail before any work on a bad name
    await store.open()
    kind = await asyncio.to_thread(_classify, path)
    if kind == "layout":
        return await _import_layout(store, path, ref)
    if kind in ("rootfs-dir", "rootfs-tar"):
        return await _import_rootfs(store, path, ref, is_dir=kind == "rootfs-dir")
    work = store.temp_path("import")
    try:
        await asyncio.to_thread(_extract_layout, path, work)
        return await _import_layout(store, work, ref)
    finally:
        await asyncio.to_thread(fsutil.remove_tree, work)


def _classify(path: Path) -> str:
    """layout (an OCI layout directory), rootfs-dir, layout-tar or rootfs-tar."""
    if path.is_dir():
        return "layout" if (path / "oci-layout").exists() else "rootfs-dir"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file or directory")
    return "layout-tar" if _sniff_archive(path) == "layout" else "rootfs-tar"


def _sniff_archive(path: Path) -> str:
    """'layout' for a tar of an OCI layout, 'rootfs' for anything else tar-shaped."""
    names: set[str] = set()
    try:
        with open_uncompressed(path) as raw, \
                tarfile.open(fileobj=cast(IO[bytes], raw), mode="r|") as tar:
            for m in tar:
                names.add(clean_name(m.name))
                if {"oci-layout", "index.json"} <= names:
                    return "layout"
    except tarfile.TarError as exc:
        raise InvalidImage(f"{path}: not a tar archive ({exc})") from None
    if "manifest.json" in names and "repositories" in names:
        raise UnsupportedImage(f"{path} is a legacy `docker save` archive; convert it with "
                               "`skopeo copy docker-archive:FILE oci-archive:OUT` first")
    return "rootfs"


def _extract_layout(archive: Path, dest: Path) -> None:
    """Extract only what an OCI layout holds: oci-layout, index.json and blobs/sha256/<hex>
    as plain files. Anything else (docker's manifest.json, directories) is skipped; any
    other type at those names, or an unsafe name anywhere, is refused."""
    (dest / "blobs" / "sha256").mkdir(parents=True)
    checker = ArchiveChecker(max_bytes=MAX_BLOB_BYTES * 4)
    with open_uncompressed(archive) as raw, \
            tarfile.open(fileobj=cast(IO[bytes], raw), mode="r|") as tar:
        for m in tar:
            rel = checker.check(m)
            parts = rel.split("/")
            wanted = rel in ("oci-layout", "index.json") or (
                len(parts) == 3 and parts[:2] == ["blobs", "sha256"])
            if not wanted or m.isdir():
                continue
            if not m.isreg():
                raise UnsafeArchive(f"{archive}: member {m.name!r} must be a regular file")
            if len(parts) == 3:
                digest_hex("sha256:" + parts[2], f"blob name {m.name!r}")
            if m.size > MAX_BLOB_BYTES:
                raise InvalidImage(f"{archive}: {m.name!r} is over {MAX_BLOB_BYTES} bytes")
            src = tar.extractfile(m)
            assert src is not None
            try:
                with open(dest / rel, "xb") as out:
                    fsutil.hash_stream(src, out, MAX_BLOB_BYTES, m.name)
            except FileExistsError:
                raise InvalidImage(f"{archive}: {m.name!r} appears twice") from None


async def _import_layout(store: ImageStore, layout: Path, ref: str | None) -> Image:
    manifest, config, layers, ref = await asyncio.to_thread(_read_layout, layout, ref,
                                                            store.tmp)
    return await store.add_image(manifest, config, layers, ref=ref)


def _read_blob(layout: Path, desc: Descriptor, limit: int) -> bytes:
    path = layout / "blobs" / "sha256" / digest_hex(desc.digest)
    try:
        if path.is_symlink() or path.stat().st_size > limit:
            raise InvalidImage(f"blob {desc.digest} is a symlink or over {limit} bytes")
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidImage(f"blob {desc.digest} is missing from {layout}") from None
    if sha256_digest(data) != desc.digest or len(data) != desc.size:
        raise InvalidImage(f"blob {desc.digest} does not match its digest and size "
                           f"({desc.size} bytes)")
    return data


def _read_layout(layout: Path, ref: str | None,
                 store_tmp: Path) -> tuple[bytes, bytes, list[Path], str]:
    try:
        version = json.loads((layout / "oci-layout").read_bytes()).get("imageLayoutVersion")
    except (OSError, ValueError, AttributeError):
        version = None
    if not isinstance(version, str) or not version.startswith("1."):
        raise UnsupportedImage(f"{layout}: oci-layout imageLayoutVersion {version!r} is not "
                               "1.x")
    index = load_json((layout / "index.json").read_bytes(), "index.json", MAX_INDEX_BYTES)
    desc, ref = _choose(layout, index, ref)
    manifest = _read_blob(layout, desc, MAX_MANIFEST_BYTES)
    m = parse_manifest(manifest, desc.media_type)
    config = _read_blob(layout, m.config, MAX_CONFIG_BYTES)
    layers = []
    for layer in m.layers:
        path = layout / "blobs" / "sha256" / layer.hex
        if not path.is_file() or path.is_symlink():
            raise InvalidImage(f"layer blob {layer.digest} is missing from {layout}")
        layers.append(path)
    return manifest, config, layers, ref


def _choose(layout: Path, index: dict[str, object], ref: str | None,
            depth: int = 0) -> tuple[Descriptor, str]:
    """Pick the manifest to import: the one whose ref annotation matches `ref` (full or
    just the tag), else the only one; nested indexes pick this host's platform."""
    raw = index.get("manifests")
    if not isinstance(raw, list) or not raw:
        raise InvalidImage(f"{layout}: index.json lists no manifests")
    descs = [parse_descriptor(d, f"index.json entry {i}") for i, d in enumerate(raw)]
    if depth == 0 and len(descs) > 1:
        names = {d.annotations.get(ANNOTATION_REF): d for d in descs}
        hit = None
        if ref is not None:
            wanted = parse_ref(ref)
            hit = names.get(wanted.tagged) or names.get(wanted.tag)
        if hit is None:
            raise InvalidImage(f"{layout} holds {len(descs)} images "
                               f"({', '.join(sorted(str(n) for n in names))}); name one "
                               "whose ref annotation matches")
        descs = [hit]
    if depth > 0 and len(descs) > 1:
        descs = [_for_platform(layout, raw, descs)]
    desc = descs[0]
    if ref is None:
        ref = _ref_from_annotation(layout, desc)
    if desc.media_type in INDEX_TYPES:
        if depth > 2:
            raise InvalidImage(f"{layout}: image indexes nested too deep")
        nested = load_json(_read_blob(layout, desc, MAX_INDEX_BYTES), "image index",
                           MAX_INDEX_BYTES)
        return _choose(layout, nested, ref, depth + 1)[0], ref
    if desc.media_type not in MANIFEST_TYPES:
        raise UnsupportedImage(f"{layout}: {desc.media_type!r} is not an image manifest")
    return desc, ref


def _for_platform(layout: Path, raw: list[object], descs: list[Descriptor]) -> Descriptor:
    want = host_platform()
    for obj, desc in zip(raw, descs, strict=True):
        plat = obj.get("platform") if isinstance(obj, dict) else None
        if isinstance(plat, dict) and (plat.get("os"), plat.get("architecture")) == want:
            return desc
    raise UnsupportedImage(f"{layout}: no manifest for {want[0]}/{want[1]}")


def _ref_from_annotation(layout: Path, desc: Descriptor) -> str:
    name = desc.annotations.get(ANNOTATION_REF)
    if name:
        with contextlib.suppress(InvalidReference):
            if ":" in name or "/" in name:
                return str(parse_ref(name))
    raise InvalidReference(f"{layout}: give the image a name (NAME:TAG); its ref "
                           f"annotation {name!r} is not a full reference")


async def _import_rootfs(store: ImageStore, path: Path, ref: str | None,
                         *, is_dir: bool) -> Image:
    if ref is None:
        raise InvalidReference(f"{path}: a root filesystem needs a name (NAME:TAG)")
    out = store.temp_path("layer")
    try:
        built = await asyncio.to_thread(
            (lambda: write_layer(entries_from_dir(path), out)) if is_dir
            else (lambda: _retar(path, out)))
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    config = make_config([built.diff_id], created=ROOTFS_CREATED,
                         created_by=f"skiff image import {path.name}",
                         env=[DEFAULT_PATH_ENV], cmd=["sh"])
    manifest = make_manifest(config, [built.descriptor])
    return await store.add_image(manifest, config, [out], ref=ref)


def _retar(src: Path, out: Path) -> BuiltLayer:
    """Copy a rootfs tarball member by member into a gzip layer, checking each member and
    dropping devices under dev/. Order and metadata are kept as in the source."""
    checker = ArchiveChecker()
    with open_uncompressed(src) as raw, \
            tarfile.open(fileobj=cast(IO[bytes], raw), mode="r|") as tar, \
            LayerWriter(out) as w:
        try:
            for m in tar:
                if (m.ischr() or m.isblk()) and clean_name(m.name).startswith("dev/"):
                    continue
                rel = checker.check(m)
                if not rel:
                    continue  # the root itself: the unpacker gives it 0755 root:root
                m.name = rel  # normalised: no ./ prefix, no doubled slashes
                if m.islnk():
                    m.linkname = clean_name(m.linkname)
                w.add(m, tar.extractfile(m) if m.isreg() else None)
        except tarfile.TarError as exc:
            raise InvalidImage(f"{src}: not a valid tar ({exc})") from None
        return w.close()
