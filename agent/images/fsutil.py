"""Blocking file helpers for the store: atomic writes, hashing copies, temp names that
carry the writer's pid (so a later process can tell abandoned temp files from live ones).
Everything here blocks; callers run it through asyncio.to_thread."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from skiff.processes import pid_alive

CHUNK = 1 << 20


def temp_name(prefix: str = "") -> str:
    """`<pid>.<random>[.<prefix>]`: unique, and tells whose it is."""
    name = f"{os.getpid()}.{secrets.token_hex(6)}"
    return f"{name}.{prefix}" if prefix else name



def clean_stale_temps(tmp: Path) -> None:
    """Remove temp entries left by processes that are gone (a crash mid-write). Entries
    of live processes, this one included, stay: they may be writes in flight."""
    if not tmp.is_dir():
        return
    for entry in tmp.iterdir():
        pid_text = entry.name.split(".", 1)[0]
        if pid_text.isdigit() and pid_alive(int(pid_text)):
            continue
        remove_tree(entry)


def remove_tree(path: Path) -> None:
    """Remove a file or directory tree; missing is fine (removal must be repeatable)."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_libc = ctypes.CDLL(None, use_errno=True)


def syncfs(path: Path) -> None:
    """Flush the filesystem holding `path` (one call for a whole unpacked layer instead of
    an fsync per file); falls back to sync(2)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, tmp_dir: Path) -> None:
    """Write temp, fsync, rename over `path`, fsync the directory: readers see the old
    file or the new one, never a torn one, even across a crash."""
    tmp = tmp_dir / temp_name(path.name)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def hash_stream(src: BinaryIO, out: BinaryIO | None, limit: int, what: str) -> tuple[str, int]:
    """Read `src` to the end (copying into `out` if given); return (sha256 digest, size).
    Raises ValueError past `limit` bytes, so a huge input stops early."""
    h = hashlib.sha256()
    size = 0
    while chunk := src.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise ValueError(f"{what} is over the {limit} byte limit")
        h.update(chunk)
        if out is not None:
            out.write(chunk)
    return "sha256:" + h.hexdigest(), size


def hash_file(path: Path, limit: int) -> tuple[str, int]:
    with open(path, "rb") as f:
        return hash_stream(f, None, limit, str(path))


@contextlib.contextmanager
def flocked(path: Path) -> Iterator[None]:
    """An exclusive flock on `path`: keeps two processes (an agent and a running
    make-busybox-image.sh) from interleaving index updates and garbage collection."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
