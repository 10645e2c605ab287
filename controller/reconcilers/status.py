"""Status summaries: what a service's tasks and an app's services add up to (pure)."""

from __future__ import annotations

from skiff.models.objects import AppStatus, Service, ServiceCount, ServiceStatus, Task


def service_status(service: Service, tasks: list[Task]) -> ServiceStatus:
    wanted = [t for t in tasks if t.spec.desired_state == "running"]
    # A global service wants one task per eligible node: as many as its plan keeps.
    global_ = service.spec.deploy.mode == "global"
    return ServiceStatus(
        observed_generation=service.metadata.generation,
        replicas=len(wanted) if global_ else service.spec.replicas,
        running=sum(1 for t in wanted if t.status.state == "running"),
        pending=sum(1 for t in wanted if t.status.state == "pending"),
        spec_hash=service.spec.container_hash(),
        conditions=list(service.status.conditions),
    )


def _desired(service: Service) -> int:
    if service.spec.deploy.mode == "global":
        return service.status.replicas  # the eligible nodes, as the service last counted
    return service.spec.replicas


def app_status(generation: int, services: list[Service]) -> AppStatus:
    return AppStatus(
        observed_generation=generation,
        services={
            s.metadata.name: ServiceCount(desired=_desired(s), running=s.status.running,
                                          pending=s.status.pending)
            for s in sorted(services, key=lambda s: s.metadata.name)
        },
    )
