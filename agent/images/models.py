"""What the store hands out: frozen values parsed from OCI JSON, safe to share and cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a blob is, its digest and its size in bytes."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def hex(self) -> str:
        return self.digest.partition(":")[2]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest,
                               "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(frozen=True)
class ImageConfig:
    """The runtime defaults of an image (the `config` object of an OCI image config).
    `cmd` and `entrypoint` are None when unset, which differs from set-but-empty."""

    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()  # "80/tcp", sorted
    volumes: tuple[str, ...] = ()        # anonymous volume paths, sorted
    stop_signal: str | None = None
    labels: dict[str, str] = field(default_factory=dict, compare=False)
    # Docker's extension, kept raw ({Test, Interval, Timeout, StartPeriod, Retries}, times
    # in nanoseconds): the compose healthcheck code interprets it.
    healthcheck: dict[str, Any] | None = field(default=None, compare=False)

    def env_map(self) -> dict[str, str]:
        """Env as a dict; a later duplicate wins, as in a shell."""
        out: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            out[key] = value
        return out


@dataclass(frozen=True)
class HistoryEntry:
    created: str | None = None
    created_by: str | None = None
    author: str | None = None
    comment: str | None = None
    empty_layer: bool = False


@dataclass(frozen=True)
class Image:
    """A resolved image: the reference it was found under, its manifest and config."""

    ref: str                  # "busybox:latest", or "name@sha256:..." when found by digest
    digest: str               # manifest digest: what a registry and `name@digest` use
    id: str                   # config digest: Docker's image ID
    config: ImageConfig
    layers: tuple[Descriptor, ...]   # manifest order: base layer first
    diff_ids: tuple[str, ...]        # sha256 of each layer uncompressed, same order
    created: str | None
    history: tuple[HistoryEntry, ...]
    size: int                 # bytes of config and layer blobs as stored (compressed)
    architecture: str = ""
    os: str = ""
    manifest_media_type: str = ""
    config_descriptor: Descriptor | None = None


@dataclass(frozen=True)
class ImageSummary:
    """One line of `skiff images`."""

    ref: str
    digest: str
    id: str
    size: int
    created: str | None
