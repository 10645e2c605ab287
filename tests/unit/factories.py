"""Small builders of API objects for unit tests of pure logic."""

from __future__ import annotations

import dataclasses
import itertools

from skiff.models.appspec import AppSpec, Deploy, ServiceSpec
from skiff.models.objects import (
    App,
    Node,
    NodeResources,
    NodeSpec,
    NodeStatus,
    ObjectMeta,
    Service,
    Task,
)

_ids = itertools.count(1)


def ids() -> str:
    return f"id{next(_ids):04d}"


def spec(image: str = "busybox", replicas: int = 3, **kw: object) -> ServiceSpec:
    return ServiceSpec(image=image, deploy=Deploy(replicas=replicas), **kw)  # type: ignore[arg-type]


def app(name: str = "hello", uid: str = "app-uid", generation: int = 1,
        **services: ServiceSpec) -> App:
    return App(metadata=ObjectMeta(name=name, uid=uid, generation=generation,
                                   resource_version=10),
               spec=AppSpec(name=name, services=services or {"web": spec()}))


def service(name: str = "web", app_name: str = "hello", uid: str = "svc-uid",
            generation: int = 1, owner: str = "app-uid",
            service_spec: ServiceSpec | None = None) -> Service:
    return Service(metadata=ObjectMeta(name=name, app=app_name, uid=uid, generation=generation,
                                       owner_uid=owner, resource_version=20,
                                       labels={"skiff.app": app_name}),
                   spec=service_spec or spec())


def task_of(svc: Service, slot: int, *, node: str | None = None, state: str = "pending",
            desired: str = "running", spec_hash: str | None = None,
            created: str = "2026-01-01T00:00:00Z") -> Task:
    from controller.reconcilers.replicas import new_task

    t = new_task(svc, slot, ids())
    t_spec = dataclasses.replace(t.spec, node_name=node, desired_state=desired,  # type: ignore[arg-type]
                                 spec_hash=spec_hash or t.spec.spec_hash)
    status = dataclasses.replace(t.status, state=state)  # type: ignore[arg-type]
    meta = dataclasses.replace(t.metadata, created_at=created, resource_version=30)
    return dataclasses.replace(t, metadata=meta, spec=t_spec, status=status)


def node(name: str, ready: bool = True, unschedulable: bool = False,
         labels: dict[str, str] | None = None, cpus: float = 0.0, memory: int = 0) -> Node:
    return Node(metadata=ObjectMeta(name=name, labels=labels or {}),
                spec=NodeSpec(unschedulable=unschedulable),
                status=NodeStatus(ready=ready, allocatable=NodeResources(cpus, memory)))
