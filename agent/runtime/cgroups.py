"""The host's cgroup hierarchies: where a container's cgroup lives, OOM notification on
cgroup v1, and removal of leftovers.

This host is "hybrid": one cgroup v1 hierarchy per controller (cpu and cpuacct apart)
plus name=systemd, and a cgroup2 mount beside them. runc (cgroupfs driver) creates
``<mount>/<cgroupsPath>`` in *every* one of them, including name=systemd and the cgroup2
mount, and removes the leaf on delete, but never the parents.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")


@dataclass(frozen=True)
class CgroupMount:
    path: Path
    version: int  # 1 or 2
    controllers: frozenset[str]  # v1: e.g. {"memory"} or {"name=systemd"}; v2: empty


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    return field.replace("\\040", " ").replace("\\011", "\t").replace(
        "\\012", "\n").replace("\\134", "\\")


def parse_mountinfo(text: str) -> list[CgroupMount]:
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        fstype, _source, *rest = right.split()
        if len(fields) < 5 or fstype not in ("cgroup", "cgroup2"):
            continue
        options = rest[0].split(",") if rest else []
        if fstype == "cgroup2":
            mounts.append(CgroupMount(Path(_unescape(fields[4])), 2, frozenset()))
        else:
            controllers = frozenset(o for o in options if o not in ("rw", "ro"))
            mounts.append(CgroupMount(Path(_unescape(fields[4])), 1, controllers))
    return mounts


def cgroup_mounts() -> list[CgroupMount]:
    return parse_mountinfo(MOUNTINFO.read_text())


def _under(mount: Path, cgroup_path: str) -> Path:
    return mount / cgroup_path.strip("/")


def memory_dir(cgroup_path: str, mounts: list[CgroupMount] | None = None) -> Path | None:
    """The v1 memory controller's directory for ``cgroup_path`` (None on pure cgroup v2)."""
    for mount in mounts if mounts is not None else cgroup_mounts():
        if mount.version == 1 and "memory" in mount.controllers:
            return _under(mount.path, cgroup_path)
    return None


def controller_dir(controller: str, cgroup_path: str) -> Path | None:
    for mount in cgroup_mounts():
        if mount.version == 1 and controller in mount.controllers:
            return _under(mount.path, cgroup_path)
    return None


def existing_dirs(cgroup_path: str) -> list[Path]:
    """Every directory that exists for ``cgroup_path`` or below it, in every hierarchy."""
    found = []
    for mount in cgroup_mounts():
        top = _under(mount.path, cgroup_path)
        if top.is_dir():
            found.extend(Path(d) for d, _subdirs, _files in os.walk(top))
    return found


def remove(cgroup_path: str, timeout: float = 5.0) -> list[Path]:
    """rmdir ``cgroup_path`` and everything below it in every hierarchy, deepest first.
    Blocking (call it in a thread). Retries EBUSY until ``timeout`` (processes that were
    just killed leave their cgroup a moment later); returns what could not be removed."""
    if cgroup_path.strip("/") == "":
        raise ValueError("refusing to remove the root cgroup")
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for directory in sorted(existing_dirs(cgroup_path), key=lambda p: -len(p.parts)):
            try:
                directory.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                    raise
                left.append(directory)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


class OomWatcher:
    """Counts OOM events of one v1 memory cgroup through cgroup.event_control.

    runc removes the container's cgroup as soon as the container exits, so reading
    memory.oom_control afterwards is impossible. Instead the shim creates the memory cgroup
    *before* runc starts (runc reuses an existing directory) and registers an eventfd on
    memory.oom_control. The kernel signals it once per OOM, and once more when the cgroup is
    removed. A signal read while the directory still exists is certainly an OOM (removal
    signals only after the directory is gone); signals read after that are told apart by
    count: removal contributes exactly one.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.oom_seen = False
        self._after_removal = 0
        directory.mkdir(parents=True, exist_ok=True)
        self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        control = os.open(directory / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        try:
            (directory / "cgroup.event_control").write_text(f"{self._efd} {control}")
        except OSError:
            os.close(self._efd)
            raise
        finally:
            os.close(control)  # the kernel holds its own reference once registered

    def fileno(self) -> int:
        return self._efd

    def on_readable(self) -> None:
        """Drain the eventfd (call when it is readable, or at any time)."""
        try:
            count = os.eventfd_read(self._efd)
        except BlockingIOError:
            return
        # Check existence *after* reading: if it still exists, no removal signal was in it.
        if (self.directory / "memory.oom_control").exists():
            self.oom_seen = True
        else:
            self._after_removal += count

    def finish(self, killed: bool, timeout: float = 1.0, extra: float = 0.2) -> bool:
        """After the container is gone: remove the cgroup if runc did not (a failed start
        never used it), wait briefly for the removal signal, and say whether an OOM
        happened. Blocking, bounded by ``timeout``.

        ``killed`` (exit 137): one signal seen only after removal may then be an OOM whose
        removal signal is still on its way, so wait ``extra`` seconds for a second one.
        """
        with contextlib.suppress(OSError):
            self.directory.rmdir()
        deadline = time.monotonic() + timeout
        self.on_readable()
        while self._after_removal < 1 and not self.oom_seen and time.monotonic() < deadline:
            time.sleep(0.01)
            self.on_readable()
        if killed and not self.oom_seen and self._after_removal == 1:
            deadline = time.monotonic() + extra
            while self._after_removal < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
                self.on_readable()
        self.close()
        return self.oom_seen or self._after_removal >= 2

    def close(self) -> None:
        if self._efd >= 0:
            os.close(self._efd)
            self._efd = -1
