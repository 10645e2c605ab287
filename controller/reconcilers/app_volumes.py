"""App → Volumes: which Volume objects an app's compose volumes ask for, as a pure plan.

Every non-external volume of an app becomes a cluster Volume named by its cluster name
(``todo_data``, or its ``name:``), made by the app. Volumes are never deleted here:
deleting an app keeps its volumes (``docker compose down`` without ``-v``), and applying
it again adopts them, data and node included. A volume of that name the app did not make
(``skiff volume create``, another app) is used as it is. External volumes must exist: the
apply is refused otherwise (controller/api/volume_checks.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from skiff.models.objects import App, ObjectMeta, Volume, VolumeSpec


@dataclass(frozen=True)
class VolumePlan:
    create: list[Volume] = field(default_factory=list)
    update: list[Volume] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.create or self.update)


def desired_volumes(app: App) -> dict[str, Volume]:
    out: dict[str, Volume] = {}
    for key in sorted(app.spec.volumes):
        spec = app.spec.volumes[key]
        if spec.external or spec.name in out:
            continue
        labels = {**spec.labels, "skiff.app": app.metadata.name}
        out[spec.name] = Volume(
            metadata=ObjectMeta(name=spec.name, app=app.metadata.name,
                                owner_uid=app.metadata.uid, labels=labels),
            spec=VolumeSpec(driver=spec.driver or "local",
                            driver_opts=dict(spec.driver_opts)))
    return out


def plan_volumes(app_name: str, app: App | None, existing: Mapping[str, Volume]
                 ) -> VolumePlan:
    """``existing``: by name, the Volumes the app wants that are stored."""
    if app is None:
        return VolumePlan()
    create, update = [], []
    for name, vol in desired_volumes(app).items():
        have = existing.get(name)
        if have is None:
            create.append(vol)
        elif have.metadata.app == app_name and not have.spec.deleting and (
                have.metadata.owner_uid, have.metadata.labels) != (
                vol.metadata.owner_uid, vol.metadata.labels):
            # Adopted by a new instance of the app: its node and data stay.
            meta = dataclasses.replace(have.metadata, owner_uid=vol.metadata.owner_uid,
                                       labels=vol.metadata.labels)
            update.append(dataclasses.replace(have, metadata=meta))
    return VolumePlan(create, update)
