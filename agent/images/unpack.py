"""Layers unpacked for overlayfs: each layer once, into <root>/layers/<diff_id hex>/.

OCI whiteouts become what overlayfs reads in a lower dir: `.wh.name` a character device
0/0 named `name`, `.wh..wh..opq` the xattr trusted.overlay.opaque=y on its directory (so
the agent must run as root, which it does). Ownership, modes (setuid included), symlinks,
hardlinks, fifos, mtimes and the xattrs listed in KEPT_XATTR_PREFIXES are kept.

A layer is unpacked into tmp/ and renamed into layers/ only when complete and when its
uncompressed bytes hashed to the diff_id: a directory under layers/ is always a whole,
verified layer. Concurrent requests for one layer in this process share one unpack; two
processes may both unpack, and the loser of the rename discards its copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import stat
import tarfile
from pathlib import Path
from typing import IO, cast

from agent.images import fsutil
from agent.images.compress import HashingReader, Reader, open_uncompressed
from agent.images.errors import ImageNotFound, InvalidImage, UnsafeArchive
from agent.images.models import Descriptor, Image
from agent.images.oci import MAX_LAYER_BYTES
from agent.images.store import ImageStore
from agent.images.tarsafe import (
    AUFS_META_PREFIX,
    OPAQUE_MARKER,
    ArchiveChecker,
    clean_name,
    is_overlay_whiteout,
    whiteout_victim,
)

log = logging.getLogger(__name__)

OPAQUE_XATTR = "trusted.overlay.opaque"
# xattrs applied from a layer. trusted.* is refused: trusted.overlay.redirect or .opaque
# smuggled in a tar would steer overlayfs; security.selinux would carry foreign labels.
KEPT_XATTR_PREFIXES = ("user.", "security.capability", "system.posix_acl_")
_XATTR_PAX = "SCHILY.xattr."

# Per store: diff_id hex -> the task unpacking it, shared by all who ask meanwhile.
_inflight: dict[tuple[int, str], asyncio.Task[Path]] = {}


async def lower_dirs(store: ImageStore, image: Image) -> list[Path]:
    """The image's layers as overlayfs lower dirs, topmost first (the order `lowerdir=`
    takes), unpacking any not yet unpacked. Layers unpack in parallel."""
    await store.open()
    dirs = await asyncio.gather(*(ensure_layer(store, desc, diff_id)
                                  for desc, diff_id in zip(image.layers, image.diff_ids,
                                                           strict=True)))
    return list(reversed(dirs))


async def ensure_layer(store: ImageStore, desc: Descriptor, diff_id: str) -> Path:
    final = store.layer_path(diff_id)
    key = (id(store), final.name)
    task = _inflight.get(key)
    if task is None:
        if await asyncio.to_thread(final.is_dir):
            return final
        task = _inflight.get(key)  # someone may have started while we looked
        if task is None:
            task = asyncio.create_task(_unpack(store, desc, diff_id))
            _inflight[key] = task
            task.add_done_callback(lambda t: _done(key, t))
    # Shielded: one caller giving up must not abort the unpack the others wait for.
    return await asyncio.shield(task)


def _done(key: tuple[int, str], task: asyncio.Task[Path]) -> None:
    if _inflight.get(key) is task:
        del _inflight[key]
    if not task.cancelled():
        task.exception()  # retrieved: an unpack nobody awaits any more must not warn


async def _unpack(store: ImageStore, desc: Descriptor, diff_id: str) -> Path:
    final = store.layer_path(diff_id)
    store.busy_layers[final.name] += 1
    try:
        await asyncio.to_thread(unpack_layer, store.blob_path(desc.digest), diff_id, final,
                                store.tmp)
    finally:
        store.busy_layers[final.name] -= 1
        if store.busy_layers[final.name] <= 0:
            del store.busy_layers[final.name]
    return final


def unpack_layer(blob: Path, diff_id: str, final: Path, tmp: Path) -> None:
    """Blocking: unpack `blob` into `final` atomically, checking it against `diff_id`."""
    if final.is_dir():
        return
    work = tmp / fsutil.temp_name(f"unpack-{final.name[:12]}")
    work.mkdir(mode=0o700)
    try:
        try:
            with open_uncompressed(blob) as raw:
                reader = HashingReader(raw, MAX_LAYER_BYTES)
                apply_tar(reader, work)
                reader.drain()
        except FileNotFoundError as exc:
            if exc.filename == str(blob):
                raise ImageNotFound(f"layer blob {blob.name} is gone (image removed?)") from None
            raise
        if reader.digest != diff_id:
            raise InvalidImage(f"layer {blob.name} unpacks to {reader.digest}, not its "
                               f"diff_id {diff_id}")
        fsutil.syncfs(work)
        try:
            os.rename(work, final)
        except OSError as exc:
            # Another process finished the same layer first: keep theirs.
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not final.is_dir():
                raise
            fsutil.remove_tree(work)
    except BaseException:
        fsutil.remove_tree(work)
        raise


def apply_tar(stream: Reader, dest: Path) -> None:
    """Apply one layer tar to the empty directory `dest`, in overlayfs form."""
    checker = ArchiveChecker()
    dirs: dict[Path, tarfile.TarInfo] = {}  # the last entry for a directory wins
    os.chmod(dest, 0o755)
    try:
        with tarfile.open(fileobj=cast(IO[bytes], stream), mode="r|") as tar:
            for m in tar:
                rel = checker.check(m)
                if not rel:
                    if m.isdir():
                        dirs[dest] = m
                    continue
                parent_rel, _, base = rel.rpartition("/")
                parent = _ensure_parent(dest, parent_rel, m.name)
                target = parent / base
                if base == OPAQUE_MARKER:
                    os.setxattr(parent, OPAQUE_XATTR, b"y")
                elif base.startswith(AUFS_META_PREFIX):
                    continue
                elif (victim := whiteout_victim(base)) is not None:
                    _whiteout(parent / victim, replace=False)
                elif is_overlay_whiteout(m):
                    _whiteout(target, replace=True)
                else:
                    _clear(target, m, dirs)
                    if m.isdir():
                        if not target.is_dir():
                            os.mkdir(target, 0o700)
                        dirs[target] = m
                    else:
                        _create(tar, m, target, dest)
    except tarfile.TarError as exc:
        raise InvalidImage(f"layer is not a valid tar: {exc}") from None
    # Directory modes and times last, deepest first: a read-only directory must not stop
    # its children being written, and writing them must not change its mtime afterwards.
    for path in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        _apply_attrs(path, dirs[path])


def _ensure_parent(dest: Path, parent_rel: str, raw: str) -> Path:
    """The member's parent directory, created if missing. Every component is checked with
    lstat: a symlink there (from this layer) would carry the write outside `dest`."""
    path = dest
    for comp in parent_rel.split("/") if parent_rel else ():
        path = path / comp
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            os.mkdir(path, 0o755)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafeArchive(f"member {raw!r} lies beneath {comp!r}, which is not a real "
                                "directory in this layer")
    return path


def _whiteout(path: Path, *, replace: bool) -> None:
    """Mark `path` deleted for overlayfs. A whiteout hides lower layers only: if this
    layer itself holds `path`, the layer's own entry stays (OCI layer spec)."""
    if os.path.lexists(path):
        if not replace:
            return
        _remove(path)
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def _clear(target: Path, m: tarfile.TarInfo, dirs: dict[Path, tarfile.TarInfo]) -> None:
    """An entry over an existing path replaces it, except dir over dir, which merges.
    Pending directory attributes at or under a replaced path are dropped: applied later,
    a chmod would follow the symlink that may now stand there."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode) and m.isdir():
        return
    _remove(target)
    if stat.S_ISDIR(st.st_mode):
        for path in [p for p in dirs if p == target or target in p.parents]:
            del dirs[path]


def _remove(path: Path) -> None:
    if stat.S_ISDIR(os.lstat(path).st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _create(tar: tarfile.TarFile, m: tarfile.TarInfo, target: Path, dest: Path) -> None:
    if m.isreg():
        src = tar.extractfile(m)
        assert src is not None
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out, fsutil.CHUNK)
    elif m.issym():
        os.symlink(m.linkname, target)
    elif m.islnk():
        # The checker made sure the target is an earlier file of this very layer; its
        # parents are checked on disk again, as os.link follows symlinks in them.
        src_parent, _, src_base = clean_name(m.linkname).rpartition("/")
        src = _ensure_parent(dest, src_parent, m.name) / src_base
        os.link(src, target, follow_symlinks=False)
        return  # one inode: its attributes came with the first name
    elif m.isfifo():
        os.mkfifo(target, 0o600)
    else:
        raise UnsafeArchive(f"member {m.name!r} has an unsupported type {m.type!r}")
    _apply_attrs(target, m)


def _apply_attrs(path: Path, m: tarfile.TarInfo) -> None:
    """Owner, then mode (chown clears setuid bits), then xattrs (chown also clears
    security.capability), then times. Nothing here follows a symlink."""
    link = m.issym()
    os.chown(path, m.uid, m.gid, follow_symlinks=False)
    if not link:
        os.chmod(path, m.mode & 0o7777)
    for key, value in m.pax_headers.items():
        if not key.startswith(_XATTR_PAX):
            continue
        name = key[len(_XATTR_PAX):]
        if not name.startswith(KEPT_XATTR_PREFIXES) or link:
            log.debug("layer member %s: xattr %s not applied", m.name, name)
            continue
        try:
            os.setxattr(path, name, value.encode("utf-8", "surrogateescape"),
                        follow_symlinks=False)
        except OSError as exc:  # "where possible": a filesystem may not take it
            log.warning("layer member %s: cannot set xattr %s: %s", m.name, name, exc)
    with contextlib.suppress(OSError):
        os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)
