"""Gives every Network a subnet and VNI from the registry, and every node a slice of it."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

from controller.reconcilers.informer import EventType, Informer
from controller.reconcilers.netregistry import NetworkRegistry
from controller.reconcilers.network_plan import plan_network, requested_subnet
from controller.reconcilers.runner import Reconciler
from controller.store.objects import ObjectStore
from skiff.models.objects import Network, Node

# Frees the claims of networks that are gone (a deletion missed while no controller led).
# A tuple, so that no network's name can be mistaken for it.
SWEEP: tuple[str] = ("sweep",)


class NetworkReconciler(Reconciler):
    name = "networks"

    def __init__(self, store: ObjectStore, networks: Informer, nodes: Informer,
                 registry: NetworkRegistry | None = None) -> None:
        super().__init__()
        self.store = store
        self.networks = networks
        self.nodes = nodes
        self.registry = registry or NetworkRegistry(store.kv)
        self._seen: dict[str, str] = {}  # node -> address, to skip heartbeat-only events
        networks.add_handler(lambda _t, net: self.enqueue(net.metadata.name))
        nodes.add_handler(self._node_event)

    def _node_event(self, event: EventType, node: Node) -> None:
        # Heartbeats change a node every few seconds; only its coming, going or moving
        # to another address changes networks.
        name = node.metadata.name
        if event == "DELETED":
            if self._seen.pop(name, None) is None:
                return
        elif self._seen.get(name) == node.status.address:
            return
        else:
            self._seen[name] = node.status.address
        for net in self.networks.items():
            self.enqueue_soon(net.metadata.name)

    def all_keys(self) -> Iterable[Hashable]:
        return [SWEEP, *sorted(n.metadata.name for n in self.networks.items())]

    def _vteps(self) -> dict[str, str]:
        return {n.metadata.name: n.status.address for n in self.nodes.items()}

    async def reconcile(self, key: Any) -> None:
        if key == SWEEP:
            await self._sweep()
            return
        network: Network | None = self.networks.get(key)
        if network is None:
            await self.registry.release({key})
            self._retry_refused()
            return
        outcome = await self.registry.claim(key, requested_subnet(network.spec))
        updated = plan_network(network, outcome, self._vteps())
        if updated is not None:
            await self.store.update(updated)

    async def _sweep(self) -> None:
        claims, _ = await self.registry.load()
        # The cache is read after the registry: a claim in what we loaded was made for a
        # network the cache held then, so one missing from it now has been deleted.
        gone = set(claims) - {n.metadata.name for n in self.networks.items()}
        if gone:
            await self.registry.release(gone)
            self._retry_refused()

    def _retry_refused(self) -> None:
        # A freed subnet may be the one a refused network asked for: try them again now
        # rather than at the next resync.
        for net in self.networks.items():
            if not net.status.ready:
                self.enqueue_soon(net.metadata.name)
