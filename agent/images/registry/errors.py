"""Registry errors. Each names the registry, so a task status or the CLI can show it as
is ("registry 10.0.0.1:5000 unreachable after 3 attempts: ...")."""

from __future__ import annotations

from agent.images.errors import ImageError, ImageNotFound, InvalidImage


class RegistryError(ImageError):
    """The registry answered with an error, or could not be talked to."""


class RegistryUnreachable(RegistryError):
    """Connection errors or 5xx answers on every attempt."""


class RegistryAuthError(RegistryError):
    """401/403 after authenticating, or a token server that refused the credentials."""


class RemoteNotFound(RegistryError, ImageNotFound):
    """The registry has no such repository, tag or manifest."""


class DigestMismatch(RegistryError, InvalidImage):
    """Content whose sha256 or size is not what its descriptor (or the reference) says:
    refused, and nothing of it is kept."""
