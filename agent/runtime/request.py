"""What the agent asks the runtime to run: one container, fully resolved.

Everything here is already decided (image config merged with the service spec, the
entrypoint resolved, the root filesystem mounted by the image store); the runtime only
turns it into an OCI bundle and runs it.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# runc's own rule for container ids, plus a length cap: the id names cgroup directories
# and files, and Docker's ids are 64 hex characters.
_ID_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
MAX_ID_LENGTH = 64
_CGROUP_PARENT_RE = re.compile(r"[a-zA-Z0-9_.-]+(/[a-zA-Z0-9_.-]+)*")


class RequestError(ValueError):
    """The request cannot be run as given (bad id, unknown user, unknown signal...)."""


def validate_id(container_id: str) -> str:
    if len(container_id) > MAX_ID_LENGTH or not _ID_RE.fullmatch(container_id):
        raise RequestError(
            f"invalid container id {container_id!r}: use 1-{MAX_ID_LENGTH} characters "
            "[a-zA-Z0-9_.-], starting with a letter or digit")
    return container_id


def validate_cgroup_parent(parent: str) -> str:
    if not _CGROUP_PARENT_RE.fullmatch(parent) or any(
            part in (".", "..") for part in parent.split("/")):
        raise RequestError(
            f"invalid cgroup parent {parent!r}: use relative path segments like 'skiff/node1'")
    return parent


def signal_number(name: str | int) -> int:
    """``"SIGTERM"``, ``"TERM"``, ``"15"`` or ``15`` -> 15."""
    if isinstance(name, int):
        return name
    text = name.strip().upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(signal.Signals[text])
    except KeyError:
        raise RequestError(f"unknown signal {name!r}") from None


@dataclass(frozen=True)
class MountRequest:
    """A bind mount of a host path, or a tmpfs. ``size`` and ``mode`` apply to tmpfs."""

    type: Literal["bind", "tmpfs"]
    target: str
    source: str = ""
    read_only: bool = False
    size: int | None = None
    mode: int | None = None

    def __post_init__(self) -> None:
        if self.type not in ("bind", "tmpfs"):
            raise RequestError(f"mount {self.target}: unknown type {self.type!r}")
        if not self.target.startswith("/"):
            raise RequestError(f"mount target {self.target!r} must be an absolute path")
        if self.type == "bind" and not self.source.startswith("/"):
            raise RequestError(f"bind mount {self.target}: source {self.source!r} must be "
                               "an absolute host path")


@dataclass(frozen=True)
class ContainerRequest:
    id: str
    bundle_dir: Path
    rootfs: Path
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "/"
    # "uid", "uid:gid", "name" or "name:group", resolved in the rootfs; None = image default
    # (root).
    user: str | None = None
    hostname: str = ""
    # None = a new, empty network namespace (loopback only, and down).
    netns_path: str | None = None
    mounts: list[MountRequest] = field(default_factory=list)
    hosts_file: Path | None = None
    resolv_file: Path | None = None
    memory_limit: int | None = None
    cpus: float | None = None
    pids_limit: int | None = None
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    read_only: bool = False
    init: bool = False
    cgroup_parent: str = "skiff"
    stop_signal: str = "SIGTERM"
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_id(self.id)
        validate_cgroup_parent(self.cgroup_parent)
        signal_number(self.stop_signal)
        if not self.args:
            raise RequestError(f"container {self.id}: no command to run (empty args)")
        if not self.cwd.startswith("/"):
            raise RequestError(f"container {self.id}: working dir {self.cwd!r} is not absolute")
        for what, value in (("memory limit", self.memory_limit),
                            ("pids limit", self.pids_limit)):
            if value is not None and value <= 0:
                raise RequestError(f"container {self.id}: {what} must be positive")
        if self.cpus is not None and self.cpus <= 0:
            raise RequestError(f"container {self.id}: cpus must be positive")

    @property
    def cgroup_path(self) -> str:
        """Absolute cgroupfs path (the same under every controller): /<parent>/<id>."""
        return f"/{self.cgroup_parent}/{self.id}"
