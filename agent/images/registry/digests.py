"""Checking content against its descriptor while it streams: a blob is hashed as it
arrives, refused as soon as it runs past its declared size, and compared at the end."""

from __future__ import annotations

import hashlib

from agent.images.oci import sha256_digest
from agent.images.registry.errors import DigestMismatch


class DigestVerifier:
    """Feed chunks with update(); finish() raises DigestMismatch unless the bytes seen
    have exactly `size` bytes (when known) and hash to `digest`."""

    def __init__(self, digest: str, size: int | None, what: str) -> None:
        if not digest.startswith("sha256:"):
            raise DigestMismatch(f"{what}: unsupported digest {digest!r} (sha256 only)")
        self.digest = digest
        self.size = size
        self.what = what
        self.seen = 0
        self._hash = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self.seen += len(chunk)
        if self.size is not None and self.seen > self.size:
            # Stop reading at once: a registry sending more than declared is wrong or
            # hostile, and the rest need not reach the disk.
            raise DigestMismatch(f"digest mismatch: {self.what} is longer than its "
                                 f"declared {self.size} bytes")
        self._hash.update(chunk)

    def finish(self) -> None:
        got = "sha256:" + self._hash.hexdigest()
        if self.size is not None and self.seen != self.size:
            raise DigestMismatch(f"digest mismatch: {self.what} is {self.seen} bytes, "
                                 f"expected {self.size}")
        if got != self.digest:
            raise DigestMismatch(f"digest mismatch: {self.what} hashes to {got}, "
                                 f"expected {self.digest}")


def verify_bytes(data: bytes, digest: str, size: int | None, what: str) -> None:
    if size is not None and len(data) != size:
        raise DigestMismatch(f"digest mismatch: {what} is {len(data)} bytes, expected {size}")
    got = sha256_digest(data)
    if got != digest:
        raise DigestMismatch(f"digest mismatch: {what} hashes to {got}, expected {digest}")
