"""The API's nouns: metadata + spec + status, stored in etcd and served over HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from skiff.models.appspec import AppSpec, ServiceSpec

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
class ServiceStatus:
    JSON_CAMEL: ClassVar[bool] = True

    observed_generation: int = 0
    replicas: int = 0
    running: int = 0
    pending: int = 0
    spec_hash: str = ""
    conditions: list[Condition] = field(default_factory=list)


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


ApiObject = App | Service | Task | Node


def qualified_name(meta: ObjectMeta) -> str:
    """``app/name`` for objects that belong to an app, else ``name``."""
    return f"{meta.app}/{meta.name}" if meta.app else meta.name
