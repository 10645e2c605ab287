"""A RUN's overlay upper dir → the entries of its layer, in OCI form.

What overlayfs writes in the upper dir is almost a layer already; two things differ:
- a deleted file is a character device 0/0 under its name → an empty `.wh.<name>` file;
- a directory that replaced a lower one (rm -rf d; mkdir d) carries the xattr
  trusted.overlay.opaque=y → the directory plus an empty `.wh..wh..opq` inside it.
This is the inverse of what agent/images/unpack.py does when it unpacks a layer.
Other overlay bookkeeping (trusted.overlay.* xattrs) is dropped with every trusted.*
xattr. Device nodes under dev/ are dropped (the runtime mounts its own /dev); elsewhere a
RUN may not leave one (images do not carry device nodes); sockets are dropped."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from agent.images.layerbuild import Entry, kept_xattrs
from agent.images.tarsafe import OPAQUE_MARKER, WHITEOUT_PREFIX

OPAQUE_XATTR = "trusted.overlay.opaque"

# Mount points runc creates in the rootfs when the image lacks them; when a RUN left them
# empty and they were not there before, they are not part of the step's changes.
MOUNT_STUBS = ("etc/resolv.conf", "etc/hosts", "etc", "proc", "sys", "dev")


class DiffError(ValueError):
    pass


def existing_stubs(rootfs: Path) -> set[str]:
    return {p for p in MOUNT_STUBS if os.path.lexists(rootfs / p)}


def drop_stubs(upper: Path, before: set[str]) -> None:
    """Remove the mount points runc made (see MOUNT_STUBS), deepest first."""
    for rel in MOUNT_STUBS:
        if rel in before:
            continue
        path = upper / rel
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_size == 0:
            path.unlink()
        elif stat.S_ISDIR(st.st_mode) and not any(os.scandir(path)):
            path.rmdir()


def _opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def upper_entries(upper: Path) -> list[Entry]:
    """Blocking: the layer entries of an (unmounted) upper dir."""
    paths: list[str] = []
    for dirpath, dirnames, filenames in os.walk(upper, followlinks=False):
        rel = os.path.relpath(dirpath, upper)
        for name in dirnames + filenames:
            paths.append(name if rel == "." else f"{rel}/{name}")
    entries: list[Entry] = []
    inodes: dict[tuple[int, int], str] = {}
    for rel in sorted(paths):
        full = upper / rel
        st = full.lstat()
        common = {"mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
                  "mtime": int(st.st_mtime)}
        parent, _, name = rel.rpartition("/")
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            whiteout = f"{parent}/{WHITEOUT_PREFIX}{name}" if parent else \
                f"{WHITEOUT_PREFIX}{name}"
            entries.append(Entry(whiteout, "file", mode=0o600))
        elif stat.S_ISLNK(st.st_mode):
            entries.append(Entry(rel, "symlink", target=os.readlink(full), **common))
        elif stat.S_ISDIR(st.st_mode):
            entries.append(Entry(rel, "dir", xattrs=kept_xattrs(full), **common))
            if _opaque(full):
                entries.append(Entry(f"{rel}/{OPAQUE_MARKER}", "file", mode=0o600))
        elif stat.S_ISREG(st.st_mode):
            first = inodes.setdefault((st.st_dev, st.st_ino), rel) if st.st_nlink > 1 \
                else rel
            if first != rel:
                entries.append(Entry(rel, "hardlink", target=first, **common))
            else:
                entries.append(Entry(rel, "file", source=full, xattrs=kept_xattrs(full),
                                     **common))
        elif stat.S_ISFIFO(st.st_mode):
            entries.append(Entry(rel, "fifo", **common))
        elif (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)) and \
                not rel.startswith("dev/"):
            raise DiffError(f"/{rel} is a device node; images may not carry device nodes")
    return entries
