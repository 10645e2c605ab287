"""The normalised app: what a compose file means once loaded and validated.

Field names follow the compose specification so that ``skiff config`` prints a file
compose itself would accept. Short syntaxes (``"8080:80"``, ``"data:/var/lib"``,
``command: echo hi``) are expanded to their long forms by skiff.manifest; nothing here
holds an unparsed string where a structure is meant.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

from skiff.models.codec import encode

Protocol = Literal["tcp", "udp"]
PublishMode = Literal["ingress", "host"]
MountType = Literal["volume", "bind", "tmpfs"]
RestartPolicy = Literal["no", "always", "on-failure", "unless-stopped"]
DeployMode = Literal["replicated", "global"]
ConstraintOperator = Literal["==", "!="]


@dataclass(frozen=True)
class PortMapping:
    """One published or exposed container port (compose long syntax)."""

    target: int
    published: int | None = None
    protocol: Protocol = "tcp"
    host_ip: str | None = None
    mode: PublishMode = "ingress"


@dataclass(frozen=True)
class VolumeOptions:
    nocopy: bool = False


@dataclass(frozen=True)
class BindOptions:
    create_host_path: bool = False


@dataclass(frozen=True)
class TmpfsOptions:
    size: int | None = None  # bytes
    mode: int | None = None


@dataclass(frozen=True)
class Mount:
    """A volume, bind or tmpfs mount (compose long syntax); bind sources are absolute."""

    type: MountType
    target: str
    source: str | None = None
    read_only: bool = False
    volume: VolumeOptions | None = None
    bind: BindOptions | None = None
    tmpfs: TmpfsOptions | None = None


@dataclass(frozen=True)
class ServiceNetwork:
    aliases: list[str] = field(default_factory=list)
    ipv4_address: str | None = None


@dataclass(frozen=True)
class ResourceLimits:
    cpus: float | None = None
    memory: int | None = None  # bytes
    pids: int | None = None


@dataclass(frozen=True)
class ResourceReservations:
    cpus: float | None = None
    memory: int | None = None  # bytes


@dataclass(frozen=True)
class Resources:
    limits: ResourceLimits | None = None
    reservations: ResourceReservations | None = None


@dataclass(frozen=True)
class Constraint:
    """``node.name==x``, ``node.hostname!=y`` or ``node.labels.K==V``, parsed.

    ``attribute`` is ``node.name``, ``node.hostname`` (the same as the node's name: an
    agent registers under its hostname) or ``node.labels.<key>``.
    """

    attribute: str
    operator: ConstraintOperator
    value: str

    @property
    def label(self) -> str | None:
        """The label key of a ``node.labels.<key>`` constraint, else None."""
        prefix = "node.labels."
        return self.attribute[len(prefix):] if self.attribute.startswith(prefix) else None

    def __str__(self) -> str:
        return f"{self.attribute}{self.operator}{self.value}"


@dataclass(frozen=True)
class Preference:
    """Spread a service's tasks evenly over the values of a node label."""

    spread: str  # "node.labels.<key>"

    @property
    def label(self) -> str:
        return self.spread.removeprefix("node.labels.")


@dataclass(frozen=True)
class Placement:
    constraints: list[Constraint] = field(default_factory=list)
    preferences: list[Preference] = field(default_factory=list)
    max_replicas_per_node: int | None = None


UpdateOrder = Literal["stop-first", "start-first"]
FailureAction = Literal["pause", "continue", "rollback"]


@dataclass(frozen=True)
class UpdateConfig:
    """deploy.update_config: how a changed service replaces its replicas. Durations in
    seconds."""

    parallelism: int = 1  # slots replaced at a time; 0: all at once
    delay: float = 0.0  # between one batch finishing and the next starting
    order: UpdateOrder = "stop-first"
    failure_action: FailureAction = "pause"
    monitor: float = 5.0  # a new replica must keep running this long to count
    max_failure_ratio: float = 0.0


@dataclass(frozen=True)
class Deploy:
    replicas: int = 1  # replicated mode only
    mode: DeployMode = "replicated"  # global: one task on every eligible node
    placement: Placement = field(default_factory=Placement)
    resources: Resources | None = None
    labels: dict[str, str] = field(default_factory=dict)
    # None: a changed service replaces every replica at once.
    update_config: UpdateConfig | None = None
    rollback_config: UpdateConfig | None = None


@dataclass(frozen=True)
class Healthcheck:
    """compose's `healthcheck`, normalised: `test` in Docker's list form (["CMD", ...],
    ["CMD-SHELL", "..."], ["NONE"]) or None to keep the image's; durations as compose
    writes them ("30s"); None where the image's or Docker's default applies."""

    test: list[str] | None = None
    interval: str | None = None
    timeout: str | None = None
    retries: int | None = None
    start_period: str | None = None
    disable: bool = False


@dataclass(frozen=True)
class BuildSpec:
    """compose's `build:`: what `skiff apply` builds (on the cluster) before deploying."""

    context: str  # absolute once normalised: the folder on the CLI's machine
    dockerfile: str = "Dockerfile"  # relative to the context
    args: dict[str, str] = field(default_factory=dict)
    target: str | None = None


@dataclass(frozen=True)
class ServiceSpec:
    """Desired state of one service, as compose describes it."""

    image: str
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    user: str | None = None
    hostname: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    ports: list[PortMapping] = field(default_factory=list)
    volumes: list[Mount] = field(default_factory=list)
    networks: dict[str, ServiceNetwork] = field(default_factory=dict)
    deploy: Deploy = field(default_factory=Deploy)
    restart: RestartPolicy | None = None
    restart_max_retries: int | None = None  # the N of "on-failure:N"
    stop_signal: str | None = None
    stop_grace_period: str | None = None  # a compose duration, canonical form ("1m30s")
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    read_only: bool = False
    init: bool = False
    build: BuildSpec | None = None
    # Service → condition (service_started, service_healthy,
    # service_completed_successfully): this service's tasks wait for it.
    depends_on: dict[str, str] = field(default_factory=dict)
    expose: list[str] = field(default_factory=list)  # informational: networks are open
    healthcheck: Healthcheck | None = None

    @property
    def replicas(self) -> int:
        return self.deploy.replicas

    def container_hash(self) -> str:
        """Hash of everything that shapes a replica's container.

        Two specs with the same hash run the same container, so a task is replaced only
        when this changes. Left out: how many replicas and where they go (replicas, mode,
        placement) and the service's own labels; none of them shape a container, so
        scaling or moving constraints never restarts a running replica (a pending one is
        refreshed by the service reconciler instead).
        """
        data = encode(self)
        deploy = dict(data.get("deploy", {}))
        for key in ("replicas", "labels", "mode", "placement", "update_config",
                    "rollback_config"):
            deploy.pop(key, None)
        data["deploy"] = deploy
        # The recipe does not shape the container, the image it made does: `skiff apply`
        # pins `image` to the built digest, so a rebuild that changed anything changes
        # the hash through `image`, and moving the build context changes nothing.
        data.pop("build", None)
        # Neither shapes the container: one decides when it starts, one documents ports.
        data.pop("depends_on", None)
        data.pop("expose", None)
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class IpamConfig:
    subnet: str | None = None
    gateway: str | None = None
    ip_range: str | None = None


@dataclass(frozen=True)
class Ipam:
    driver: str | None = None
    config: list[IpamConfig] = field(default_factory=list)


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    driver: str | None = None
    driver_opts: dict[str, str] = field(default_factory=dict)
    ipam: Ipam | None = None
    internal: bool = False
    attachable: bool = False
    external: bool = False
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VolumeSpec:
    name: str
    driver: str | None = None
    driver_opts: dict[str, str] = field(default_factory=dict)
    external: bool = False
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AppSpec:
    """A whole normalised compose file."""

    name: str
    services: dict[str, ServiceSpec] = field(default_factory=dict)
    networks: dict[str, NetworkSpec] = field(default_factory=dict)
    volumes: dict[str, VolumeSpec] = field(default_factory=dict)
