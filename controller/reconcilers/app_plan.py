"""App → Services: which Service objects an app's spec asks for, as a pure plan."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from skiff.models.appspec import AppSpec, Mount, ServiceNetwork, ServiceSpec
from skiff.models.objects import App, ObjectMeta, Service


@dataclass(frozen=True)
class AppPlan:
    create: list[Service] = field(default_factory=list)
    update: list[Service] = field(default_factory=list)
    delete: list[Service] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


def cluster_network_name(app: App, key: str) -> str:
    """The cluster name of compose network ``key`` of ``app`` (``default`` included:
    normalising adds it whenever a service is on it)."""
    net = app.spec.networks.get(key)
    return net.name if net is not None else f"{app.metadata.name}_{key}"


def cluster_networks(app: App, networks: dict[str, ServiceNetwork]
                     ) -> dict[str, ServiceNetwork]:
    """A service's networks keyed by cluster name rather than compose key, so that its
    tasks say exactly which networks to join. Two keys naming one network: their aliases
    are merged."""
    out: dict[str, ServiceNetwork] = {}
    for key in sorted(networks):
        name = cluster_network_name(app, key)
        attachment = networks[key]
        if name in out:
            seen = out[name]
            aliases = seen.aliases + [a for a in attachment.aliases if a not in seen.aliases]
            attachment = dataclasses.replace(
                seen, aliases=aliases, ipv4_address=seen.ipv4_address or attachment.ipv4_address)
        out[name] = attachment
    return dict(sorted(out.items()))


def cluster_volume_mounts(app: App, mounts: list[Mount]) -> list[Mount]:
    """A service's mounts with each named volume's compose key replaced by the volume's
    cluster name (``data`` → ``todo_data``), so a task says exactly which Volume it
    mounts, whatever app it runs in."""
    out = []
    for m in mounts:
        declared = app.spec.volumes.get(m.source or "") if m.type == "volume" else None
        out.append(dataclasses.replace(m, source=declared.name) if declared else m)
    return out


class NotInApp(ValueError):
    pass


def app_view(app: AppSpec, spec: ServiceSpec) -> ServiceSpec:
    """A stored Service spec as the App holds it: cluster network and volume names back
    to the app's compose keys (the inverse of desired_service's renaming). NotInApp if
    the app no longer has one of them."""
    nets = {net.name: key for key, net in app.networks.items()}
    networks = {}
    for cluster, attach in spec.networks.items():
        if cluster not in nets:
            raise NotInApp(f"network {cluster} is no longer in app {app.name}")
        networks[nets[cluster]] = attach
    vols = {vol.name: key for key, vol in app.volumes.items()}
    mounts = []
    for m in spec.volumes:
        if m.type == "volume" and m.source:
            if m.source not in vols:
                raise NotInApp(f"volume {m.source} is no longer in app {app.name}")
            m = dataclasses.replace(m, source=vols[m.source])
        mounts.append(m)
    return dataclasses.replace(spec, networks=networks, volumes=mounts)


def desired_service(app: App, name: str) -> Service:
    spec = app.spec.services[name]
    if spec.networks:
        spec = dataclasses.replace(spec, networks=cluster_networks(app, spec.networks))
    if spec.volumes:
        spec = dataclasses.replace(spec, volumes=cluster_volume_mounts(app, spec.volumes))
    return Service(
        metadata=ObjectMeta(name=name, app=app.metadata.name, owner_uid=app.metadata.uid,
                            labels={"skiff.app": app.metadata.name}),
        spec=spec,
    )


def plan_app(app: App | None, services: list[Service]) -> AppPlan:
    """Services to create, update (spec changed: generation + 1) and delete.

    ``app`` None means the app is gone, so every service it owned goes too. A service
    whose owner uid differs belongs to an earlier app of the same name and is replaced.
    """
    if app is None:
        return AppPlan(delete=sorted(services, key=lambda s: s.metadata.name))
    current = {s.metadata.name: s for s in services}
    create, update, delete = [], [], []
    for name in sorted(app.spec.services):
        want = desired_service(app, name)
        have = current.get(name)
        if have is None:
            create.append(want)
        elif have.metadata.owner_uid != app.metadata.uid:
            delete.append(have)
        elif have.spec != want.spec or have.metadata.labels != want.metadata.labels:
            meta = dataclasses.replace(
                have.metadata, labels=want.metadata.labels,
                generation=have.metadata.generation + (have.spec != want.spec))
            update.append(dataclasses.replace(have, metadata=meta, spec=want.spec))
    for name in sorted(current):
        if name not in app.spec.services:
            delete.append(current[name])
    return AppPlan(create=create, update=update, delete=delete)
