"""Tar member checks shared by import (scan before anything is stored) and unpack
(again, as the layer is written): a layer tar must never write outside its target.

Refused, with UnsafeArchive naming the member:
- absolute names (`/etc/passwd`) and names with a `..` component;
- a member beneath a path an earlier member made a symlink or a non-directory
  (`link -> /etc` then `link/passwd`), the classic escape through a symlink;
- hardlinks whose target is absolute, has `..`, or is not an earlier file of this archive;
- block and character devices (images do not carry device nodes: runc builds /dev),
  except a character device 0/0, which is an overlay-style whiteout;
- whiteout-shaped names that are not plain files, or that name `.`/`..`/nothing;
- more than MAX_LAYER_MEMBERS entries or MAX_LAYER_BYTES of file data.
Symlink *targets* may point anywhere (`/bin/busybox`): they are resolved inside the
container at run time, and the unpacker never follows a symlink while writing.
"""

from __future__ import annotations

import tarfile

from agent.images.errors import UnsafeArchive
from agent.images.oci import MAX_LAYER_BYTES, MAX_LAYER_MEMBERS

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
# Whiteout-style names of AUFS bookkeeping (`.wh..wh.plnk`): Docker drops them; so do we.
AUFS_META_PREFIX = ".wh..wh."
MAX_PATH = 4096


def clean_name(name: str, what: str = "member") -> str:
    """`./a//b/` → `a/b`; `.` and `./` → `` (the layer root)."""
    if "\x00" in name:
        raise UnsafeArchive(f"{what} {name!r} contains a NUL byte")
    if name.startswith("/"):
        raise UnsafeArchive(f"{what} {name!r} has an absolute path; layer members must be "
                            "relative")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"{what} {name!r} contains '..'; it would escape the target")
    path = "/".join(parts)
    if len(path) > MAX_PATH:
        raise UnsafeArchive(f"{what} {name[:80]!r}... is over {MAX_PATH} bytes long")
    return path


def whiteout_victim(base: str) -> str | None:
    """For `.wh.foo` return `foo`; None for ordinary names and the opaque marker."""
    if base == OPAQUE_MARKER or not base.startswith(WHITEOUT_PREFIX):
        return None
    victim = base[len(WHITEOUT_PREFIX):]
    if victim in ("", ".", ".."):
        raise UnsafeArchive(f"whiteout {base!r} names {victim or 'nothing'!r}; refusing a "
                            "whiteout of the directory itself")
    return victim


def is_overlay_whiteout(m: tarfile.TarInfo) -> bool:
    return m.ischr() and m.devmajor == 0 and m.devminor == 0


class ArchiveChecker:
    """Checks the members of one tar in order; `check` returns the member's clean path."""

    def __init__(self, *, max_members: int = MAX_LAYER_MEMBERS,
                 max_bytes: int = MAX_LAYER_BYTES) -> None:
        self.kinds: dict[str, str] = {}  # path -> "dir" | "file" | "link" (symlink) | "other"
        self.members = 0
        self.bytes = 0
        self.max_members = max_members
        self.max_bytes = max_bytes

    def check(self, m: tarfile.TarInfo) -> str:
        self.members += 1
        if self.members > self.max_members:
            raise UnsafeArchive(f"archive has over {self.max_members} members")
        path = clean_name(m.name)
        if m.isreg():
            self.bytes += m.size
            if self.bytes > self.max_bytes:
                raise UnsafeArchive(f"archive holds over {self.max_bytes} bytes of file data")
        self._check_parents(path, m.name)
        base = path.rpartition("/")[2]
        if base.startswith(WHITEOUT_PREFIX):
            if not m.isreg():
                raise UnsafeArchive(f"member {m.name!r}: a whiteout marker must be a plain "
                                    "file; '.wh.' names are reserved")
            whiteout_victim(base)
            return path  # markers hide lower content; they add nothing at this path
        if m.isdev() and not (m.isfifo() or is_overlay_whiteout(m)):
            kind = "block" if m.isblk() else "character"
            raise UnsafeArchive(f"member {m.name!r} is a {kind} device "
                                f"{m.devmajor}:{m.devminor}; images may not carry device "
                                "nodes (the runtime provides /dev)")
        if m.islnk():
            target = clean_name(m.linkname, f"hardlink target of {m.name!r}:")
            self._check_parents(target, m.name)
            if self.kinds.get(target) not in ("file", "other"):
                raise UnsafeArchive(f"member {m.name!r} is a hardlink to {m.linkname!r}, "
                                    "which is not an earlier file of this archive")
        if path:
            kind = ("dir" if m.isdir() else "link" if m.issym() else
                    "file" if m.isreg() or m.islnk() else "other")
            if self.kinds.get(path) == "dir" and kind != "dir":
                # The directory and all below it are gone: forget them, or a later
                # hardlink could name a "file" whose parent is now a symlink.
                below = path + "/"
                for p in [p for p in self.kinds if p.startswith(below)]:
                    del self.kinds[p]
            self.kinds[path] = kind
        return path

    def _check_parents(self, path: str, raw: str) -> None:
        parts = path.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            kind = self.kinds.get(prefix)
            if kind == "link":
                raise UnsafeArchive(f"member {raw!r} lies beneath symlink {prefix!r}; "
                                    "writing it would follow the link out of the target")
            if kind in ("file", "other"):
                raise UnsafeArchive(f"member {raw!r} lies beneath {prefix!r}, which is not "
                                    "a directory")
