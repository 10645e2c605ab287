"""Packing a build context: walk the directory honouring .dockerignore, count file sizes
against a limit while walking (so an oversized context is refused before any upload),
then stream a deterministic tar and its sha256.

Decisions:
- Entries are sorted (directory order by name, each directory before its contents), and
  owned by 0:0 with no user or group names, as the docker CLI sends them: COPY's default
  owner is root. Modes and mtimes are the real ones (whole seconds): COPY keeps modes, and
  its cache key covers file metadata, so normalising them would hide changes.
- Symlinks are sent as symlinks and never followed here; where they point is checked when
  a COPY or ADD source is resolved (skiff.build.safepath), as in Docker.
- Hard links are sent as separate regular files. Sockets, devices and FIFOs are left out
  (listed in `skipped`): they cannot be copied into an image from a context anyway.
- The size limit counts regular files' bytes, not tar headers.
- A directory that is excluded is not walked at all unless an exception (`!pattern`)
  could re-include something under it; a re-included file brings its parent directories.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from skiff.build.errors import ContextError, ContextTooLarge
from skiff.build.ignore import IgnoreRules

DEFAULT_CONTEXT_LIMIT = 1 << 30  # 1 GiB, like a generous `docker build` context
# What an agent accepts as the uploaded tar: the limit is checked on the files' bytes
# before upload; their tar headers come on top, so the agent's backstop is looser.
MAX_UPLOAD_BYTES = 2 * DEFAULT_CONTEXT_LIMIT
CHUNK = 1 << 20
MAX_DEPTH = 256  # directory nesting; deeper is a runaway tree, not a build context
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE


@dataclass(frozen=True)
class ContextEntry:
    path: str  # relative to the context root, /-separated
    kind: Literal["dir", "file", "symlink"]
    mode: int  # permission bits, with setuid/setgid/sticky
    mtime: int
    size: int = 0
    target: str = ""  # a symlink's target, as stored


@dataclass(frozen=True)
class ContextListing:
    root: Path
    entries: tuple[ContextEntry, ...]
    total_size: int  # bytes of regular files
    skipped: tuple[str, ...] = ()  # sockets, devices, FIFOs


@dataclass(frozen=True)
class PackedContext:
    digest: str  # "sha256:<hex>" of the tar stream
    size: int  # bytes of the tar stream


def scan_context(root: Path, ignore: IgnoreRules | None = None, *,
                 limit: int = DEFAULT_CONTEXT_LIMIT) -> ContextListing:
    """Every entry to send, in tar order; ContextTooLarge as soon as the files' bytes pass
    `limit`."""
    root = Path(root)
    if not root.is_dir():
        raise ContextError(f"build context {str(root)!r} is not a directory")
    walker = _Walker(root, ignore or IgnoreRules.empty(), limit)
    entries = walker.walk_dir("")
    return ContextListing(root, tuple(entries), walker.total, tuple(walker.skipped))


class _Walker:
    def __init__(self, root: Path, rules: IgnoreRules, limit: int) -> None:
        self.root = root
        self.rules = rules
        self.limit = limit
        self.total = 0
        self.skipped: list[str] = []

    def walk_dir(self, rel: str) -> list[ContextEntry]:
        """The entries under directory `rel` (not the directory itself)."""
        full = self.root / rel if rel else self.root
        if rel.count("/") >= MAX_DEPTH:
            raise ContextError(f"{rel[:80]}...: directories nested deeper than {MAX_DEPTH} "
                               "levels in the build context")
        try:
            names = sorted(os.listdir(full))
        except OSError as exc:
            raise ContextError(f"cannot read {rel or '.'} in the build context: "
                               f"{exc.strerror}") from None
        out: list[ContextEntry] = []
        for name in names:
            path = f"{rel}/{name}" if rel else name
            out.extend(self.entry(path))
        return out

    def entry(self, path: str) -> list[ContextEntry]:
        full = self.root / path
        try:
            st = os.lstat(full)
        except OSError as exc:
            raise ContextError(f"cannot stat {path} in the build context: {exc.strerror}") \
                from None
        excluded = self.rules.excludes(path)
        mode, mtime = stat.S_IMODE(st.st_mode), int(st.st_mtime)
        if stat.S_ISDIR(st.st_mode):
            if excluded and not self.rules.may_include_below(path):
                return []
            children = self.walk_dir(path)
            if excluded and not children:
                return []
            return [ContextEntry(path, "dir", mode, mtime), *children]
        if excluded:
            return []
        if stat.S_ISLNK(st.st_mode):
            return [ContextEntry(path, "symlink", 0o777, mtime, target=os.readlink(full))]
        if stat.S_ISREG(st.st_mode):
            if not os.access(full, os.R_OK):
                raise ContextError(f"cannot read {path} in the build context: permission "
                                   "denied (exclude it in .dockerignore?)")
            self.total += st.st_size
            if self.total > self.limit:
                raise ContextTooLarge(self.total, self.limit)
            return [ContextEntry(path, "file", mode, mtime, size=st.st_size)]
        self.skipped.append(path)
        return []


def _header(entry: ContextEntry) -> bytes:
    info = tarfile.TarInfo(entry.path)
    info.mode = entry.mode
    info.mtime = entry.mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = entry.target
    else:
        info.type = tarfile.REGTYPE
        info.size = entry.size
    try:
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    except (UnicodeError, ValueError) as exc:
        raise ContextError(f"cannot pack {entry.path!r}: {exc}") from None


class ContextStream:
    """The context tar as chunks of bytes; `digest` and `size` are set once the stream is
    exhausted. File contents are read as they are sent, in CHUNK pieces: a file that
    shrinks or grows since the scan is refused (its tar header already holds the size)."""

    def __init__(self, listing: ContextListing, chunk_size: int = CHUNK) -> None:
        self.listing = listing
        self.chunk_size = chunk_size
        self.digest: str | None = None
        self.size: int | None = None

    def __iter__(self) -> Iterator[bytes]:
        hasher = hashlib.sha256()
        written = 0
        for chunk in self._chunks():
            hasher.update(chunk)
            written += len(chunk)
            yield chunk
        self.digest = "sha256:" + hasher.hexdigest()
        self.size = written

    def _chunks(self) -> Iterator[bytes]:
        written = 0
        for entry in self.listing.entries:
            header = _header(entry)
            written += len(header)
            yield header
            if entry.kind == "file":
                yield from self._file(entry)
                padding = -entry.size % _BLOCK
                written += entry.size + padding
                if padding:
                    yield b"\0" * padding
        end = 2 * _BLOCK
        end += -(written + end) % _RECORD
        yield b"\0" * end

    def _file(self, entry: ContextEntry) -> Iterator[bytes]:
        path = self.listing.root / entry.path
        left = entry.size
        try:
            with open(path, "rb") as f:
                while left:
                    data = f.read(min(self.chunk_size, left))
                    if not data:
                        raise ContextError(f"{entry.path} shrank while the build context was "
                                           f"being packed ({entry.size} bytes when scanned)")
                    left -= len(data)
                    yield data
                if f.read(1):
                    raise ContextError(f"{entry.path} grew while the build context was being "
                                       f"packed ({entry.size} bytes when scanned)")
        except OSError as exc:
            raise ContextError(f"cannot read {entry.path} in the build context: "
                               f"{exc.strerror or exc}") from None


def write_context(listing: ContextListing, out: BinaryIO) -> PackedContext:
    """Write the tar to `out`; its digest and size."""
    stream = ContextStream(listing)
    for chunk in stream:
        out.write(chunk)
    assert stream.digest is not None and stream.size is not None
    return PackedContext(stream.digest, stream.size)


def pack_context(root: Path, out: BinaryIO, ignore: IgnoreRules | None = None, *,
                 limit: int = DEFAULT_CONTEXT_LIMIT) -> tuple[ContextListing, PackedContext]:
    """scan_context then write_context: the whole check happens before the first byte."""
    listing = scan_context(root, ignore, limit=limit)
    return listing, write_context(listing, out)
