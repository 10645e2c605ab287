"""Named network namespaces, confined to threads of their own.

A network namespace belongs to a thread, not to the process: setns() or unshare() moves only
the calling thread. The rule here (the same as containernetworking's pkg/ns) is that no thread
we do not own ever changes namespace: namespace-dependent work runs on a *fresh* thread that
enters the namespace, does the work and exits, so its namespace dies with it and can never leak
into the event loop or a reused executor thread. Sockets (netlink included) stay bound to the
namespace they were created in, and child processes inherit the namespace of the thread that
forked them, so `nft` started from such a thread acts on that namespace.

We never use `ip netns exec`: it also makes a mount namespace and remounts /sys, which hides
the cgroup mounts runc needs.

A named namespace is an nsfs bind mount on an empty file, the iproute2 convention; with the
default directory /run/netns, `ip netns list` and `ip -n NAME` see ours.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2

_libc: ctypes.CDLL | None = None


class NetnsError(OSError):
    """A namespace could not be created, entered or removed."""


def _c() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        # Python 3.11 has no os.setns/os.unshare (3.12 does); glibc has both.
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return _libc


def _check(ret: int, what: str, path: Path | str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise NetnsError(err, f"{what}: {os.strerror(err)}", str(path))


def _nsfs_dev() -> int:
    return os.stat("/proc/thread-self/ns/net").st_dev


def is_netns(path: Path) -> bool:
    """True if `path` is a mounted network namespace (an nsfs file), not just an empty file
    left behind by a crash between creating the mount point and binding it."""
    try:
        return os.stat(path).st_dev == _nsfs_dev()
    except FileNotFoundError:
        return False


def current_netns_inode() -> int:
    """Identity of the calling thread's namespace (for tests and diagnostics)."""
    return os.stat("/proc/thread-self/ns/net").st_ino


def _on_fresh_thread(fn: Callable[[], T], name: str) -> T:
    """Run fn on a new thread and return its result or raise its exception."""
    box: dict[str, object] = {}

    def body() -> None:
        try:
            box["ok"] = fn()
        except BaseException as exc:  # handed to the caller, who re-raises it
            box["err"] = exc

    thread = threading.Thread(target=body, name=name, daemon=True)
    thread.start()
    thread.join()
    if "err" in box:
        raise box["err"]  # type: ignore[misc]
    return box["ok"]  # type: ignore[return-value]


def run_in_netns(path: Path | None, fn: Callable[..., T], *args: object) -> T:
    """Call fn(*args) inside the namespace at `path` (None: the caller's own namespace).

    Blocking; call it from a worker thread (asyncio.to_thread), never from the event loop.
    """
    if path is None:
        return fn(*args)

    def entered() -> T:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _check(_c().setns(fd, CLONE_NEWNET), "setns", path)
        finally:
            os.close(fd)
        return fn(*args)

    return _on_fresh_thread(entered, f"netns:{os.path.basename(path)}")


def ensure_netns_dir(directory: Path) -> None:
    """Make `directory` a shared mount point, as `ip netns add` does for /run/netns.

    Shared propagation lets an unmount here (detach) reach copies of the bind mount that
    later mount namespaces took, so a deleted namespace is really freed.
    """
    directory.mkdir(parents=True, exist_ok=True)
    c = _c()
    raw = str(directory).encode()
    if c.mount(b"none", raw, None, MS_SHARED | MS_REC, None) == 0:
        return
    # EINVAL: not a mount point yet. Bind it onto itself, then share it.
    _check(c.mount(raw, raw, b"none", MS_BIND | MS_REC, None), "bind netns dir", directory)
    _check(c.mount(b"none", raw, None, MS_SHARED | MS_REC, None), "share netns dir", directory)


def create_netns(path: Path) -> None:
    """Create a new, empty network namespace and pin it at `path` (must not exist)."""
    ensure_netns_dir(path.parent)
    # O_EXCL: two agents (or two attach calls) can never bind over each other's namespace.
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))

    def make() -> None:
        # This thread alone moves into the new namespace, and exits right after the bind.
        _check(_c().unshare(CLONE_NEWNET), "unshare", path)
        src = b"/proc/thread-self/ns/net"
        _check(_c().mount(src, str(path).encode(), b"none", MS_BIND, None), "bind", path)

    try:
        _on_fresh_thread(make, f"netns-new:{path.name}")
    except BaseException:
        remove_netns(path)
        raise


def remove_netns(path: Path) -> None:
    """Unmount and delete a named namespace; a missing or unmounted one is fine.

    The namespace itself lives on while a process (a container) is still inside it.
    """
    if _c().umount2(str(path).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        # EINVAL: not a mount point (a crash left the bare file); ENOENT: already gone.
        if err not in (errno.EINVAL, errno.ENOENT):
            raise NetnsError(err, f"umount: {os.strerror(err)}", str(path))
    path.unlink(missing_ok=True)
