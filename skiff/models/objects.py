"""The API's nouns: metadata + spec + status, stored in etcd and served over HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from skiff.models.appspec import AppSpec, NetworkSpec, PortMapping, ServiceSpec

API_VERSION = "skiff/v1"

TaskState = Literal[
    "pending", "assigned", "pulling", "starting", "running",
    "failed", "complete", "shutdown", "rejected", "orphaned",
]
DesiredState = Literal["running", "shutdown"]
TERMINAL_STATES: frozenset[str] = frozenset(
    {"failed", "complete", "shutdown", "rejected", "orphaned"})


@dataclass
class ObjectMeta:
    JSON_CAMEL: ClassVar[bool] = True

    name: str
    app: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    uid: str = ""
    resource_version: int = 0  # etcd mod_revision; 0 means "not stored yet"
    generation: int = 0
    created_at: str = ""  # RFC 3339, UTC
    owner_uid: str | None = None


@dataclass
class Condition:
    JSON_CAMEL: ClassVar[bool] = True

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: str = ""


@dataclass
class ServiceCount:
    JSON_CAMEL: ClassVar[bool] = True

    desired: int = 0
    running: int = 0
    pending: int = 0


@dataclass
class AppStatus:
    JSON_CAMEL: ClassVar[bool] = True

    observed_generation: int = 0
    services: dict[str, ServiceCount] = field(default_factory=dict)
    conditions: list[Condition] = field(default_factory=list)


@dataclass
class App:
    JSON_CAMEL: ClassVar[bool] = True
    KIND: ClassVar[str] = "App"

    metadata: ObjectMeta
    spec: AppSpec
    status: AppStatus = field(default_factory=AppStatus)
    kind: str = "App"
    api_version: str = API_VERSION


@dataclass
class Revision:
    """One applied spec of a service (`skiff rollout history`, `undo`)."""

    JSON_CAMEL: ClassVar[bool] = True

    revision: int
    spec_hash: str
    spec: ServiceSpec
    at: str = ""  # when the controller first saw it


@dataclass
class Rollout:
    JSON_CAMEL: ClassVar[bool] = True

    state: Literal["", "updating", "paused", "completed", "rolling back",
                   "rolled back"] = ""
    message: str = ""


@dataclass
class ServiceStatus:
    JSON_CAMEL: ClassVar[bool] = True

    observed_generation: int = 0
    replicas: int = 0
    running: int = 0
    pending: int = 0
    spec_hash: str = ""
    conditions: list[Condition] = field(default_factory=list)
    revisions: list[Revision] = field(default_factory=list)  # oldest first, bounded
    rollout: Rollout = field(default_factory=Rollout)
    # `skiff rollout pause`: no replica of an outdated spec is replaced until resumed.
    paused: bool = False


@dataclass
class Service:
    JSON_CAMEL: ClassVar[bool] = True
    KIND: ClassVar[str] = "Service"

    metadata: ObjectMeta
    spec: ServiceSpec
    status: ServiceStatus = field(default_factory=ServiceStatus)
    kind: str = "Service"
    api_version: str = API_VERSION


@dataclass
class TaskSpec:
    """What one replica should run; a copy of the service spec it was made from."""

    JSON_CAMEL: ClassVar[bool] = True

    service: str
    slot: int
    spec_hash: str
    service_generation: int
    container: ServiceSpec
    desired_state: DesiredState = "running"
    node_name: str | None = None


@dataclass
class TaskStatus:
    JSON_CAMEL: ClassVar[bool] = True

    state: TaskState = "pending"
    message: str = ""
    container_id: str | None = None
    ip: str | None = None
    exit_code: int | None = None
    restarts: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    updated_at: str = ""
    pid: int | None = None
    oom_killed: bool = False
    health: str | None = None
    # Cluster network name -> this replica's address on it (plain IPv4, no prefix). ``ip``
    # stays the address on the first of them.
    networks: dict[str, str] = field(default_factory=dict)


@dataclass
class Task:
    JSON_CAMEL: ClassVar[bool] = True
    KIND: ClassVar[str] = "Task"

    metadata: ObjectMeta
    spec: TaskSpec
    status: TaskStatus = field(default_factory=TaskStatus)
    kind: str = "Task"
    api_version: str = API_VERSION

    @property
    def terminal(self) -> bool:
        return self.status.state in TERMINAL_STATES


@dataclass
class NodeResources:
    JSON_CAMEL: ClassVar[bool] = True

    cpus: float = 0.0
    memory: int = 0  # bytes


@dataclass
class NodeSpec:
    JSON_CAMEL: ClassVar[bool] = True

    unschedulable: bool = False  # no new tasks (cordon)
    drain: bool = False  # and move the ones it has elsewhere, one at a time


@dataclass
class NodeStatus:
    JSON_CAMEL: ClassVar[bool] = True

    address: str = ""
    agent_port: int = 0  # where the agent serves logs and exec, on ``address``
    ready: bool = False
    capacity: NodeResources = field(default_factory=NodeResources)
    allocatable: NodeResources = field(default_factory=NodeResources)
    last_heartbeat: str | None = None
    message: str = ""


@dataclass
class Node:
    JSON_CAMEL: ClassVar[bool] = True
    KIND: ClassVar[str] = "Node"

    metadata: ObjectMeta
    spec: NodeSpec = field(default_factory=NodeSpec)
    status: NodeStatus = field(default_factory=NodeStatus)
    kind: str = "Node"
    api_version: str = API_VERSION


@dataclass
class NetworkNode:
    """One node's part of a network: the slice it hands addresses out of, and where its
    VXLAN endpoint (VTEP) is. The node's bridge holds the slice's first host address,
    which is also the gateway of the node's containers on this network."""

    JSON_CAMEL: ClassVar[bool] = True

    subnet: str  # the slice, e.g. "10.128.0.64/26"
    vtep: str  # the node's address (Node.status.address)


@dataclass
class NetworkStatus:
    JSON_CAMEL: ClassVar[bool] = True

    observed_generation: int = 0
    subnet: str = ""  # allocated by the controller ("" until then)
    vni: int = 0  # VXLAN network identifier, unique in the cluster
    nodes: dict[str, NetworkNode] = field(default_factory=dict)
    ready: bool = False
    message: str = ""


@dataclass
class Network:
    """A cluster-wide network (compose's top-level ``networks:`` entry, or one made by
    ``skiff network create``). Named by its cluster name (``todo_default``, or the
    ``name:``/external name); ``metadata.app`` is the app that owns it, if any."""

    JSON_CAMEL: ClassVar[bool] = True
    KIND: ClassVar[str] = "Network"

    metadata: ObjectMeta
    spec: NetworkSpec
    status: NetworkStatus = field(default_factory=NetworkStatus)
    kind: str = "Network"
    api_version: str = API_VERSION


@dataclass
class EndpointAddress:
    """Where one replica of a service can be reached."""

    JSON_CAMEL: ClassVar[bool] = True

    task: str  # the task's name (within the app)
    node: str
    vtep: str  # the node's address: VXLAN traffic for these addresses goes there
    hostname: str  # the container's own host name
    ready: bool  # running: DNS answers and the routing mesh use only ready addresses
    addresses: dict[str, str] = field(default_factory=dict)  # network -> IPv4


@dataclass
class Endpoints:
    """A service's replicas as the network sees them (Kubernetes' Endpoints): written by
    the controller from tasks, services and nodes, read by every node's agent for its
    DNS answers, overlay forwarding entries and routing-mesh rules. Named like the
    service (app/name)."""

    JSON_CAMEL: ClassVar[bool] = True
    KIND: ClassVar[str] = "Endpoints"

    metadata: ObjectMeta
    # network -> the DNS names this service answers to there: its name, then its aliases
    names: dict[str, list[str]] = field(default_factory=dict)
    ports: list[PortMapping] = field(default_factory=list)  # published ones only
    addresses: list[EndpointAddress] = field(default_factory=list)
    kind: str = "Endpoints"
    api_version: str = API_VERSION


ApiObject = App | Service | Task | Node | Network | Endpoints


def qualified_name(meta: ObjectMeta) -> str:
    """``app/name`` for objects that belong to an app, else ``name``."""
    return f"{meta.app}/{meta.name}" if meta.app else meta.name


@dataclass
class VolumeSpec:
    """Where a named volume lives and how it was made. ``node`` is empty until the volume
    is first used (the node of its first task) or given at ``skiff volume create
    --node``; once set it never changes: the data is there."""

    JSON_CAMEL: ClassVar[bool] = True

    driver: str = "local"
    driver_opts: dict[str, str] = field(default_factory=dict)
    node: str = ""
    deleting: bool = False  # `skiff volume rm`: its node's agent removes the data, then it


@dataclass
class VolumeStatus:
    """Written by the agent of the volume's node once the folder exists."""

    JSON_CAMEL: ClassVar[bool] = True

    node: str = ""
    mountpoint: str = ""  # the folder on that node
    created_at: str = ""  # when the folder was made (kept across agent restarts)
    ready: bool = False
    message: str = ""


@dataclass
class Volume:
    """A named volume (compose's top-level ``volumes:`` entry, a named source a service
    uses, or ``skiff volume create``), by its cluster name (``todo_data``, or its
    ``name:``/external name). ``metadata.app`` is the app that made it, if any; deleting
    the app keeps it, as ``docker compose down`` does without ``-v``."""

    JSON_CAMEL: ClassVar[bool] = True
    KIND: ClassVar[str] = "Volume"

    metadata: ObjectMeta
    spec: VolumeSpec = field(default_factory=VolumeSpec)
    status: VolumeStatus = field(default_factory=VolumeStatus)
    kind: str = "Volume"
    api_version: str = API_VERSION


EventType = Literal["Normal", "Warning"]
CLUSTER_EVENTS = "_cluster"  # the app segment of events about objects of no app (nodes)


@dataclass
class InvolvedObject:
    JSON_CAMEL: ClassVar[bool] = True

    kind: str  # "Task", "Node", "Service", ...
    name: str
    app: str | None = None


@dataclass
class Event:
    """Something that happened to an object, for people to read (`skiff events`,
    `skiff describe`): kept for a bounded time (an etcd lease), never acted upon."""

    JSON_CAMEL: ClassVar[bool] = True
    KIND: ClassVar[str] = "Event"

    metadata: ObjectMeta
    involved: InvolvedObject
    reason: str  # Scheduled, Pulling, Started, Unhealthy, OOMKilled, NodeDown, ...
    message: str = ""
    type: EventType = "Normal"
    source: str = ""  # "scheduler", "node n1", ...
    at: str = ""  # when it happened, by its source's clock (RFC 3339, milliseconds)
    kind: str = "Event"
    api_version: str = API_VERSION
