"""Layer streams: open a blob as its uncompressed tar (compression sniffed from the first
bytes, since media types are often wrong in the wild; the diff_id check keeps that safe),
hash while reading or writing, and gzip reproducibly."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import lzma
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from agent.images.errors import InvalidImage, UnsupportedImage
from agent.images.fsutil import CHUNK

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ\x00"
BZIP2_MAGIC = b"BZh"


class Reader(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def compression_of(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(6)
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(XZ_MAGIC):
        return "xz"
    if head.startswith(BZIP2_MAGIC):
        return "bzip2"
    return "none"


@contextlib.contextmanager
def open_uncompressed(path: Path) -> Iterator[Reader]:
    """The blob at `path` as an uncompressed byte stream. gzip is what layers use; xz and
    bzip2 are accepted for rootfs tarballs; zstd needs a library skiff does not carry."""
    kind = compression_of(path)
    if kind == "zstd":
        raise UnsupportedImage(f"{path.name}: zstd compression is not supported")
    opener = {"gzip": gzip.open, "xz": lzma.open, "bzip2": bz2.open}.get(kind)
    # Closed in the finally below; a with-statement cannot pick the opener.
    f: BinaryIO = (opener(path, "rb") if opener  # type: ignore[assignment]
                   else open(path, "rb"))  # noqa: SIM115
    try:
        yield _CheckedReader(f, f"{path.name} ({kind})")
    finally:
        f.close()


class _CheckedReader:
    """Turns a decompressor's complaint (bad CRC, truncated stream) into InvalidImage, so
    only read errors are relabelled, never errors of the code consuming the stream."""

    def __init__(self, raw: BinaryIO, what: str) -> None:
        self.raw = raw
        self.what = what

    def read(self, n: int = -1, /) -> bytes:
        try:
            return self.raw.read(n)
        except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
            raise InvalidImage(f"{self.what}: corrupt or truncated: {exc}") from None


class HashingReader:
    """Reads through to `raw` and hashes every byte, with a size bound: lets tarfile
    stream a layer while its diff_id is computed in the same pass."""

    def __init__(self, raw: Reader, limit: int) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.size = 0
        self.limit = limit

    def read(self, n: int = -1, /) -> bytes:
        data = self.raw.read(n)
        self.size += len(data)
        if self.size > self.limit:
            raise InvalidImage(f"layer is over the {self.limit} byte uncompressed limit")
        self.hash.update(data)
        return data

    def drain(self) -> None:
        """Hash what tarfile left unread (the end-of-archive padding)."""
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


class HashingWriter:
    """Writes through to `raw`, hashing and counting: the tar bytes (diff_id) on one side
    of the gzip stream and the blob bytes (digest, size) on the other."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        self.raw.write(data)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


def diff_id_of(path: Path, limit: int) -> str:
    with open_uncompressed(path) as f:
        reader = HashingReader(f, limit)
        reader.drain()
        return reader.digest


def reproducible_gzip(out: BinaryIO) -> gzip.GzipFile:
    """A gzip writer whose header holds no name and no time: same input, same bytes."""
    return gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6)
