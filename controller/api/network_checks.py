"""Networking checks of an app or a network against what the cluster already holds
(docs/networking.md): subnets, published ports, external networks, DNS names.

They only read. The network reconciler still rechecks subnets under the compare-and-swap
of the address registry; the checks here exist to refuse a clash at apply time, with a
message naming both sides, before anything is written.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from controller.api.errors import ApiError
from controller.store.keys import IPAM_NETWORKS_KEY
from controller.store.objects import ObjectStore
from skiff.manifest.networks import requested_subnet
from skiff.models.appspec import AppSpec, ServiceSpec
from skiff.models.kinds import APP, NETWORK, SERVICE
from skiff.models.objects import App, Network, Service

log = logging.getLogger(__name__)

# The address registry the network reconciler keeps: {network: {"subnet", "vni"}}.
# Read-only here; see docs/networking.md, Addresses.
IPAM_REGISTRY_KEY = IPAM_NETWORKS_KEY

Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Clash:
    """One refusal: where in the app it is (a key path, "" for none) and why."""

    path: str
    message: str
    missing: bool = False  # something referred to is absent (422), not taken (409)


@dataclass(frozen=True)
class Holder:
    """A subnet someone holds or asks for."""

    network: str
    app: str | None  # the owning app; None for a standalone network
    subnet: Subnet

    def __str__(self) -> str:
        owner = f"app {self.app}" if self.app else "standalone"
        return f"network {self.network} ({owner}, {self.subnet})"


@dataclass
class Cluster:
    """What is stored, as far as the checks need it."""

    apps: list[App] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    networks: list[Network] = field(default_factory=list)
    registry: dict[str, str] = field(default_factory=dict)  # network -> claimed subnet

    def network(self, name: str) -> Network | None:
        return next((n for n in self.networks if n.metadata.name == name), None)

    def declared_by(self, name: str) -> App | None:
        """The app whose manifest declares network ``name`` as its own (not external)."""
        for app in self.apps:
            if any(n.name == name and not n.external for n in app.spec.networks.values()):
                return app
        return None

    def holders(self) -> list[Holder]:
        """Every subnet held or asked for, by network; one entry per (network, subnet)."""
        out: dict[tuple[str, Subnet], Holder] = {}

        def add(network: str, app: str | None, text: str | None) -> None:
            subnet = _parse(text)
            if subnet is not None:
                out.setdefault((network, subnet), Holder(network, app, subnet))

        for net in self.networks:
            add(net.metadata.name, net.metadata.app, net.status.subnet or None)
            add(net.metadata.name, net.metadata.app, requested_subnet(net.spec))
        for app in self.apps:
            for spec in app.spec.networks.values():
                if not spec.external:
                    add(spec.name, app.metadata.name, requested_subnet(spec))
        for name, text in self.registry.items():
            owner = self.network(name)
            declared = self.declared_by(name)
            app = owner.metadata.app if owner else (declared.metadata.name if declared
                                                    else None)
            add(name, app, text)
        return list(out.values())


def _parse(text: str | None) -> Subnet | None:
    if not text:
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


async def read_cluster(store: ObjectStore) -> Cluster:
    apps, _ = await store.list(APP)
    services, _ = await store.list(SERVICE)
    networks, _ = await store.list(NETWORK)
    registry: dict[str, str] = {}
    kv = await store.kv.get(IPAM_REGISTRY_KEY)
    if kv is not None:
        try:
            raw = json.loads(kv.value)
            registry = {str(k): str(v["subnet"]) for k, v in raw.items()
                        if isinstance(v, dict) and "subnet" in v}
        except (ValueError, AttributeError, TypeError):
            log.warning("%s is not a map of network claims; ignoring it", IPAM_REGISTRY_KEY)
    return Cluster(apps, services, networks, registry)


def subnet_clash(network: str, subnet: Subnet, app: str | None, cluster: Cluster
                 ) -> str | None:
    """Why ``network`` (of ``app``, or standalone) may not have ``subnet``, or None.
    Networks of the same app are left to the reconciler: an app renaming a network
    briefly holds both."""
    for other in cluster.holders():
        if other.network == network or (app is not None and other.app == app):
            continue
        if subnet.overlaps(other.subnet):
            return f"subnet {subnet} of network {network} overlaps {other}"
    return None


def _cluster_networks(app: AppSpec, spec: ServiceSpec) -> Iterator[tuple[str, str]]:
    """(compose key, cluster network name) of each network a service is on."""
    for key in spec.networks:
        net = app.networks.get(key)
        yield key, net.name if net else key


def _published_elsewhere(app_name: str, cluster: Cluster) -> dict[tuple[str, int], str]:
    """(protocol, port) -> "app/service" of every other app's published port: from the
    apps' specs, and from their Services (which outlive a deleted app for a moment)."""
    owners: dict[tuple[str, int], str] = {}
    specs = [(a.metadata.name, s, spec) for a in cluster.apps if a.metadata.name != app_name
             for s, spec in a.spec.services.items()]
    specs += [(s.metadata.app or "", s.metadata.name, s.spec) for s in cluster.services
              if s.metadata.app != app_name]
    for other_app, svc, spec in specs:
        for p in spec.ports:
            if p.published is not None:
                owners.setdefault((p.protocol, p.published), f"{other_app}/{svc}")
    return owners


def _names_elsewhere(app_name: str, cluster: Cluster
                     ) -> dict[str, dict[str, tuple[str, str]]]:
    """cluster network -> DNS name -> ("service"|"alias", "app/service") over other apps."""
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for other in cluster.apps:
        if other.metadata.name == app_name:
            continue
        for svc, spec in other.spec.services.items():
            who = f"{other.metadata.name}/{svc}"
            for key, network in _cluster_networks(other.spec, spec):
                names = out.setdefault(network, {})
                names.setdefault(svc, ("service", who))
                for alias in spec.networks[key].aliases:
                    names.setdefault(alias, ("alias", who))
    return out


def _network_clashes(app: AppSpec, cluster: Cluster) -> Iterator[Clash]:
    for key, net in app.networks.items():
        path = f"networks.{key}"
        stored = cluster.network(net.name)
        declared = cluster.declared_by(net.name)
        if net.external:
            if stored is None and (declared is None or declared.metadata.name == app.name):
                yield Clash(path, f"network {net.name} declared as external, but could not "
                                  "be found", missing=True)
            continue
        owner = stored.metadata.app if stored else (
            declared.metadata.name if declared else app.name)
        if owner != app.name:
            whose = f"belongs to app {owner}" if owner else "is a standalone network"
            yield Clash(path, f"network {net.name} {whose}; declare it with external: true "
                              "to join it")
            continue
        subnet = _parse(requested_subnet(net))
        if subnet is not None:
            why = subnet_clash(net.name, subnet, app.name, cluster)
            if why:
                yield Clash(f"{path}.ipam.config[0].subnet", why)


def _port_clashes(app: AppSpec, cluster: Cluster) -> Iterator[Clash]:
    taken = _published_elsewhere(app.name, cluster)
    for svc, spec in app.services.items():
        for i, p in enumerate(spec.ports):
            owner = taken.get((p.protocol, p.published or 0))
            if p.published is not None and owner:
                yield Clash(f"services.{svc}.ports[{i}]",
                            f"port {p.published}/{p.protocol} of service {app.name}/{svc} is "
                            f"already published by service {owner}")


def _name_clashes(app: AppSpec, cluster: Cluster) -> Iterator[Clash]:
    """On networks shared with other apps, a name must still answer for one service."""
    elsewhere = _names_elsewhere(app.name, cluster)  # only shared networks have entries
    for svc, spec in app.services.items():
        for key, network in _cluster_networks(app, spec):
            names = elsewhere.get(network, {})
            for j, alias in enumerate(spec.networks[key].aliases):
                if alias in names:
                    what, who = names[alias]
                    yield Clash(f"services.{svc}.networks.{key}.aliases[{j}]",
                                f'alias "{alias}" of service {app.name}/{svc} on network '
                                f"{network} is already the {what} name of service {who} there")
            if names.get(svc, ("", ""))[0] == "alias":
                yield Clash(f"services.{svc}", f'service name "{svc}" is already an alias of '
                                               f"service {names[svc][1]} on network {network}")


def app_clashes(app: AppSpec, cluster: Cluster) -> list[Clash]:
    """Every way ``app`` collides with what other apps and networks already hold."""
    return [*_network_clashes(app, cluster), *_port_clashes(app, cluster),
            *_name_clashes(app, cluster)]


def users_of(network: str, cluster: Cluster) -> list[str]:
    """"app/service" of every service on ``network`` (by cluster name): Services (keyed
    by cluster names once the app reconciler has resolved them) and apps' specs (which
    the reconciler has perhaps not turned into Services yet)."""
    specs = {a.metadata.name: a.spec for a in cluster.apps}
    found = set()
    for s in cluster.services:
        spec = specs.get(s.metadata.app or "")
        # Not yet resolved by the app reconciler, the key is the app's compose key, which
        # may name some other network: the app's spec (below) tells those apart.
        compose_key = spec is not None and network in spec.networks \
            and spec.networks[network].name != network
        if network in s.spec.networks and not compose_key:
            found.add(f"{s.metadata.app}/{s.metadata.name}")
    for app in cluster.apps:
        for svc, spec in app.spec.services.items():
            if any(name == network for _, name in _cluster_networks(app.spec, spec)):
                found.add(f"{app.metadata.name}/{svc}")
    return sorted(found)


def refusal(clashes: list[Clash], source: str) -> ApiError:
    """One API error for all of them: 409 if anything is taken, else 422 (something
    referred to is missing). Problems have no line: the server never sees the file."""
    status, code = (409, "InUse") if any(not c.missing for c in clashes) else \
        (422, "Invalid")
    lines = [f"{c.path}: {c.message}" if c.path else c.message for c in clashes]
    problems = [{"source": source, "line": None, "column": None, "path": c.path,
                 "message": c.message} for c in clashes]
    return ApiError(status, code, f"{source}: refused\n" + "\n".join(lines),
                    {"problems": problems})


async def check_app(store: ObjectStore, app: AppSpec, source: str) -> None:
    """Raise the refusal if ``app`` collides with what is stored."""
    clashes = app_clashes(app, await read_cluster(store))
    if clashes:
        raise refusal(clashes, source)
