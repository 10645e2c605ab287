"""Status summaries: what a service's tasks and an app's services add up to (pure)."""

from __future__ import annotations

from skiff.models.objects import (
    AppStatus,
    Revision,
    Rollout,
    Service,
    ServiceCount,
    ServiceStatus,
    Task,
)

REVISIONS_KEPT = 5


def with_revision(service: Service, at: str) -> list[Revision] | None:
    """The service's revisions with its current spec added, if it is new (None if the
    last revision already is this spec); the oldest go beyond REVISIONS_KEPT."""
    revisions = service.status.revisions
    want = service.spec.container_hash()
    if revisions and revisions[-1].spec_hash == want:
        return None
    number = revisions[-1].revision + 1 if revisions else 1
    return [*revisions, Revision(number, want, service.spec, at)][-REVISIONS_KEPT:]


def service_status(service: Service, tasks: list[Task],
                   rollout: Rollout | None = None) -> ServiceStatus:
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
        revisions=list(service.status.revisions),
        paused=service.status.paused,
        rollout=rollout if rollout is not None else service.status.rollout,
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
