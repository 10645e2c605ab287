"""Errors of the image store. Each says what was wrong and with which file or member, so
the CLI and a task's status can show it as is."""

from __future__ import annotations


class ImageError(Exception):
    """Base of every image-store error."""


class InvalidReference(ImageError, ValueError):
    """An image reference that does not parse (`Name:tag@sha256:...`)."""


class ImageNotFound(ImageError, LookupError):
    """No image under that reference in this store."""


class InvalidImage(ImageError):
    """Content that is not a valid image: bad JSON, wrong media type, digest or size
    mismatch, a layer that does not match its diff_id, limits exceeded."""


class UnsupportedImage(InvalidImage):
    """Valid content that skiff does not handle (zstd layers, sha512 digests, a legacy
    `docker save` archive)."""


class UnsafeArchive(InvalidImage):
    """A tar whose members would write outside the target: absolute paths, `..`, paths
    beneath a symlink, hardlinks out of the archive, device nodes."""
