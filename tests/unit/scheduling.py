"""Builders for scheduler tests: services with placement, reservations and volumes."""

from __future__ import annotations

from collections.abc import Sequence

from skiff.manifest.placement import parse_constraint, parse_spread
from skiff.models.appspec import (
    Deploy,
    DeployMode,
    Mount,
    Placement,
    ResourceReservations,
    Resources,
    ServiceSpec,
)
from skiff.models.objects import Service
from tests.unit.factories import service

GIB = 2**30


def svc(name: str = "web", app: str = "hello", *, replicas: int = 3,
        constraints: Sequence[str] = (), spread: Sequence[str] = (),
        max_per_node: int | None = None, cpus: float | None = None,
        memory: int | None = None, volumes: Sequence[str] = (),
        mode: DeployMode = "replicated") -> Service:
    reservations = ResourceReservations(cpus=cpus, memory=memory)
    spec = ServiceSpec(
        image="busybox",
        volumes=[Mount(type="volume", source=v, target=f"/{v}") for v in volumes],
        deploy=Deploy(
            replicas=replicas, mode=mode,
            placement=Placement(constraints=[parse_constraint(c) for c in constraints],
                                preferences=[parse_spread(p) for p in spread],
                                max_replicas_per_node=max_per_node),
            resources=Resources(reservations=reservations)
            if reservations != ResourceReservations() else None))
    return service(name=name, app_name=app, uid=f"{app}-{name}-uid", service_spec=spec)
