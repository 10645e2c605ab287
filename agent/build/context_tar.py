"""The build context, as the CLI sent it (skiff.build.context: a plain tar, entries owned
by 0:0), unpacked once into the build's work dir so COPY can read, hash and glob it.

Unpacked with agent/images/unpack.apply_tar, the store's own hardened tar reader: no
absolute names, no `..`, nothing written through a symlink, no devices. Symlinks are kept
as they are; whether a COPY may follow one is decided by skiff.build.safepath. Local ADD
archives (tar, gzip, bzip2, xz) are unpacked the same way."""

from __future__ import annotations

from pathlib import Path

from agent.images.compress import compression_of, open_uncompressed
from agent.images.unpack import apply_tar

TAR_MAGIC_OFFSET = 257


def unpack_tar(archive: Path, dest: Path) -> None:
    """Blocking: unpack `archive` (maybe compressed) into the new directory `dest`."""
    dest.mkdir(parents=True, mode=0o755)
    with open_uncompressed(archive) as stream:
        apply_tar(stream, dest)


def is_tar_archive(path: Path) -> bool:
    """Whether ADD should unpack `path`: a tar (ustar or GNU magic), maybe gzip, bzip2 or
    xz compressed, judged by content as Docker does, never by the file name."""
    try:
        if compression_of(path) == "zstd":
            return False
        with open_uncompressed(path) as stream:
            head = b""
            while len(head) < 512:
                chunk = stream.read(512 - len(head))
                if not chunk:
                    break
                head += chunk
    except Exception:  # anything unreadable is "not an archive": it is copied as is
        return False
    return len(head) == 512 and head[TAR_MAGIC_OFFSET:TAR_MAGIC_OFFSET + 5] == b"ustar"
