"""Apply: store an app's desired state, declaratively and idempotently.

Only the App object is written, in one compare-and-swap, so an apply is never
half-done; the app reconciler turns it into Services. The same spec twice is
"unchanged" (no write, no new generation). The result lists, per service, what the
apply changes, which is also what ``--dry-run`` prints.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from controller.store.errors import AlreadyExists, Conflict, NotFound
from controller.store.objects import ObjectStore
from skiff.models.appspec import AppSpec
from skiff.models.codec import encode
from skiff.models.diff import diff
from skiff.models.kinds import APP
from skiff.models.objects import App, ObjectMeta

Action = Literal["created", "configured", "unchanged"]
_CAS_ATTEMPTS = 5


@dataclass(frozen=True)
class ServiceChange:
    name: str
    action: Literal["create", "update", "delete", "unchanged"]
    changes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ApplyResult:
    app: App
    action: Action
    services: list[ServiceChange]
    other_changes: list[str]  # networks, volumes
    dry_run: bool


def plan_changes(old: AppSpec | None, new: AppSpec) -> tuple[list[ServiceChange], list[str]]:
    """Per-service changes from ``old`` to ``new``, and changes outside services."""
    before = old.services if old else {}
    out = []
    for name in sorted(before.keys() | new.services.keys()):
        if name not in before:
            out.append(ServiceChange(name, "create"))
        elif name not in new.services:
            out.append(ServiceChange(name, "delete"))
        else:
            changes = [str(c) for c in diff(encode(before[name]), encode(new.services[name]))]
            out.append(ServiceChange(name, "update" if changes else "unchanged", changes))
    rest_old = {"networks": encode(old.networks), "volumes": encode(old.volumes)} if old else {}
    rest_new = {"networks": encode(new.networks), "volumes": encode(new.volumes)}
    return out, [str(c) for c in diff(rest_old, rest_new)]


async def apply_app(store: ObjectStore, spec: AppSpec, *, dry_run: bool = False,
                    resource_version: int | None = None) -> ApplyResult:
    """Create or update the App named by ``spec``.

    With ``resource_version`` the apply succeeds only if the stored app is still at
    that version (else Conflict); without it, a lost race is retried on fresh state.
    """
    for attempt in range(_CAS_ATTEMPTS):
        try:
            current: App | None = await store.get(APP, spec.name)
        except NotFound:
            current = None
        if resource_version is not None:
            have = current.metadata.resource_version if current else 0
            if have != resource_version:
                raise Conflict(f"apps/{spec.name}", resource_version, have)
        services, other = plan_changes(current.spec if current else None, spec)
        if current is None:
            app = App(metadata=ObjectMeta(name=spec.name, generation=1), spec=spec)
            action: Action = "created"
        elif current.spec == spec:
            return ApplyResult(current, "unchanged", services, other, dry_run)
        else:
            meta = dataclasses.replace(current.metadata,
                                       generation=current.metadata.generation + 1)
            app = dataclasses.replace(current, metadata=meta, spec=spec)
            action = "configured"
        if dry_run:
            return ApplyResult(app, action, services, other, dry_run)
        try:
            stored = await (store.create(app) if current is None else store.update(app))
        except (Conflict, AlreadyExists):
            if resource_version is not None or attempt == _CAS_ATTEMPTS - 1:
                raise
            continue
        return ApplyResult(stored, action, services, other, dry_run)
    raise AssertionError("unreachable")
