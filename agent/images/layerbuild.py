"""Writing layer tars that are reproducible: entries sorted by path, numeric owners and no
user or group names, fixed mtimes where the caller asks, and gzip without name or time.
So the same content gives the same diff_id and blob digest on every run."""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, cast

from agent.images.compress import HashingWriter, Reader, reproducible_gzip
from agent.images.errors import UnsafeArchive
from agent.images.models import Descriptor
from agent.images.oci import MT_OCI_LAYER_GZIP

# xattrs carried from a directory into a layer: user attributes and file capabilities
# (ping, for one). trusted.* (overlay's own) and security.selinux (host labels) stay out.
KEPT_XATTR_PREFIXES = ("user.", "security.capability")


@dataclass(frozen=True)
class Entry:
    """One member to write. `kind`: dir, file, symlink, hardlink or fifo. A file's
    content is `data`, or streamed from `source`."""

    path: str
    kind: str
    mode: int = 0o755
    data: bytes = b""
    source: Path | None = None
    target: str = ""
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class BuiltLayer:
    path: Path
    descriptor: Descriptor  # application/vnd.oci.image.layer.v1.tar+gzip
    diff_id: str


_TYPES = {"dir": tarfile.DIRTYPE, "file": tarfile.REGTYPE, "symlink": tarfile.SYMTYPE,
          "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE}


class LayerWriter:
    """A gzip layer tar at `out_path`, written as members are added."""

    def __init__(self, out_path: Path) -> None:
        self.path = out_path
        self._raw = open(out_path, "wb")  # noqa: SIM115 (closed in close())
        self._blob = HashingWriter(self._raw)
        self._gz = reproducible_gzip(self._blob)  # type: ignore[arg-type]
        self._tar_bytes = HashingWriter(self._gz)  # type: ignore[arg-type]
        self._tar = tarfile.open(fileobj=cast(IO[bytes], self._tar_bytes),  # noqa: SIM115
                                 mode="w|", format=tarfile.PAX_FORMAT)

    def add(self, info: tarfile.TarInfo, data: Reader | None = None) -> None:
        info.uname = info.gname = ""
        self._tar.addfile(info, cast(IO[bytes], data) if data is not None else None)

    def add_entry(self, e: Entry) -> None:
        info = tarfile.TarInfo(e.path)
        info.type = _TYPES[e.kind]
        info.mode, info.uid, info.gid, info.mtime = e.mode & 0o7777, e.uid, e.gid, e.mtime
        if e.kind in ("symlink", "hardlink"):
            info.linkname = e.target
        info.pax_headers = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape")
                            for k, v in sorted(e.xattrs)}
        if e.kind != "file":
            self.add(info)
        elif e.source is not None:
            info.size = e.source.lstat().st_size
            with open(e.source, "rb") as f:
                self.add(info, f)
        else:
            info.size = len(e.data)
            self.add(info, _BytesReader(e.data))

    def close(self) -> BuiltLayer:
        self._tar.close()
        self._gz.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        desc = Descriptor(MT_OCI_LAYER_GZIP, self._blob.digest, self._blob.size)
        return BuiltLayer(self.path, desc, self._tar_bytes.digest)

    def abort(self) -> None:
        # Mark the tar stream closed without closing it: closing would write the end of
        # the archive into the file we are about to delete (and fail on a closed gzip).
        self._tar.closed = True
        self._tar.fileobj.closed = True  # type: ignore[attr-defined]
        self._raw.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> LayerWriter:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if et is not None:
            self.abort()


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._pos = 0

    def read(self, n: int = -1, /) -> bytes:
        end = len(self._view) if n < 0 else self._pos + n
        out = bytes(self._view[self._pos:end])
        self._pos += len(out)
        return out


def write_layer(entries: Iterable[Entry], out_path: Path) -> BuiltLayer:
    """Write `entries` sorted by path (a parent sorts before its children)."""
    with LayerWriter(out_path) as w:
        for e in sorted(entries, key=lambda e: e.path):
            w.add_entry(e)
        return w.close()


def entries_from_dir(root: Path) -> list[Entry]:
    """A rootfs directory as entries, symlinks kept as symlinks (never followed), files
    sharing an inode as hardlinks, owners, modes, mtimes and kept xattrs as on disk.
    Device nodes under dev/ are dropped (the runtime mounts its own /dev); anywhere else
    they are refused. Sockets are dropped (tar cannot hold them)."""
    paths: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel = os.path.relpath(dirpath, root)
        for name in dirnames + filenames:
            paths.append(name if rel == "." else f"{rel}/{name}")
    entries: list[Entry] = []
    inodes: dict[tuple[int, int], str] = {}
    for rel in sorted(paths):
        full = root / rel
        st = full.lstat()
        common = {"mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
                  "mtime": int(st.st_mtime)}
        if stat.S_ISLNK(st.st_mode):
            entries.append(Entry(rel, "symlink", target=os.readlink(full), **common))
            continue
        xattrs = kept_xattrs(full)
        if stat.S_ISDIR(st.st_mode):
            entries.append(Entry(rel, "dir", xattrs=xattrs, **common))
        elif stat.S_ISREG(st.st_mode):
            first = inodes.setdefault((st.st_dev, st.st_ino), rel) if st.st_nlink > 1 else rel
            if first != rel:
                entries.append(Entry(rel, "hardlink", target=first, **common))
            else:
                entries.append(Entry(rel, "file", source=full, xattrs=xattrs, **common))
        elif stat.S_ISFIFO(st.st_mode):
            entries.append(Entry(rel, "fifo", **common))
        elif _is_device(st.st_mode) and not rel.startswith("dev/"):
            raise UnsafeArchive(f"{full} is a device node outside dev/; images may not "
                                "carry device nodes")
    return entries


def _is_device(mode: int) -> bool:
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode)


def kept_xattrs(path: Path) -> tuple[tuple[str, bytes], ...]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return ()
    out = []
    for name in sorted(names):
        if name.startswith(KEPT_XATTR_PREFIXES):
            try:
                out.append((name, os.getxattr(path, name, follow_symlinks=False)))
            except OSError:
                continue
    return tuple(out)
