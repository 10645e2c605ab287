"""ClusterNetworks: keeps this node's share of the cluster networks in step with the API.

It follows Networks and Endpoints (list, then watch; a periodic relist repairs what a
watch missed) and, after every burst of changes, applies what agent/netplan.py derives:
bridges and VXLAN devices for the networks that gave this node a slice, forwarding and
neighbour entries for addresses on other nodes, the DNS server's names and listening
addresses, and the routing mesh's published ports. Level-triggered: each round computes
everything from the cached objects, so a missed event costs a delay, never a wrong state.

Task runners ask it for a network's NetworkConfig before attaching a container, and tell
it about their containers' addresses, so a starting container can use DNS before the
controller has written its address into Endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from ipaddress import IPv4Address
from typing import Any

from agent.dns.server import DnsServer
from agent.dns.table import NameTable
from agent.netplan import node_networks, peers
from agent.network.config import NetworkConfig, Peer
from agent.network.errors import NetworkError
from agent.network.mesh import RoutingMesh
from agent.network.mesh_endpoints import publications
from agent.network.node import NodeNetwork
from skiff.client.api import ApiClient, ApiError
from skiff.models.codec import DecodeError, decode
from skiff.models.kinds import ENDPOINTS, NETWORK, Kind
from skiff.models.objects import EndpointAddress, Endpoints, Network, ObjectMeta

log = logging.getLogger("skiff.agent.networks")

Key = tuple[str, str]
# Changes are applied in rounds: the first change of a burst waits this long for the rest.
SETTLE_SECONDS = 0.05


def _key(meta: ObjectMeta) -> Key:
    return (meta.app or "", meta.name)


class ClusterNetworks:
    def __init__(self, api: Callable[[], ApiClient], node: str, network: NodeNetwork,
                 dns: DnsServer, mesh: RoutingMesh, *, resync_seconds: float = 30.0) -> None:
        # A getter: the agent swaps its client once it has exchanged a join token for
        # the node's own credentials.
        self._api = api
        self.node = node
        self.network = network
        self.dns = dns
        self.mesh = mesh
        self.resync_seconds = resync_seconds
        self.networks: dict[str, Network] = {}
        self.endpoints: dict[Key, Endpoints] = {}
        self.configs: dict[str, NetworkConfig] = {}  # ensured on this node
        self.problems: dict[str, str] = {}  # network -> why this node is not on it
        self._peers: dict[str, frozenset[Peer]] = {}
        self._local: dict[str, EndpointAddress] = {}  # container id -> its addresses
        self._listed: set[str] = set()  # kinds listed at least once
        self._force_mesh = False
        self._recorded: set[str] = set()
        self._dirty = asyncio.Event()
        self._applied = asyncio.Condition()

    # -- what task runners use ---------------------------------------------------------

    async def config(self, name: str, timeout: float) -> NetworkConfig:
        """The network's config once it is set up on this node; NetworkError naming why
        not if that does not happen within `timeout` seconds."""
        async def ready() -> NetworkConfig:
            async with self._applied:
                await self._applied.wait_for(lambda: name in self.configs)
                return self.configs[name]
        try:
            return await asyncio.wait_for(ready(), timeout)
        except TimeoutError:
            why = self.problems.get(name) or (
                "no such network" if name not in self.networks else "not set up yet")
            raise NetworkError(f"network {name} is not available on node {self.node}: "
                               f"{why}") from None

    def add_local(self, container_id: str, address: EndpointAddress) -> None:
        self._local[container_id] = address
        self._update_dns()

    def remove_local(self, container_id: str) -> None:
        if self._local.pop(container_id, None) is not None:
            self._update_dns()

    # -- following the API ---------------------------------------------------------------

    async def run(self) -> None:
        # Networks an earlier agent process set up: removed in the first round if the
        # cluster no longer has them. The rest are ensured again all the same (after a
        # reboot the records survive but the devices do not).
        with contextlib.suppress(NetworkError):
            self._recorded = {c.name for c in await self.network.networks()}
        jobs = [asyncio.create_task(c) for c in (
            self._follow(NETWORK, Network, self.networks),
            self._follow(ENDPOINTS, Endpoints, self.endpoints),
            self._resync(), self._apply_loop())]
        try:
            await asyncio.gather(*jobs)
        finally:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)

    async def _relist(self, kind: Kind, cls: type, cache: dict[Any, Any],
                      key: Callable[[Any], Any]) -> int:
        listed = await self._api().list(kind)
        fresh = {}
        for item in listed["items"]:
            try:
                obj = decode(cls, item)
            except DecodeError as exc:
                log.warning("ignoring an unreadable %s: %s", kind.name, exc)
                continue
            fresh[key(obj)] = obj
        cache.clear()
        cache.update(fresh)
        self._listed.add(kind.name)
        self._dirty.set()
        return int(listed["metadata"]["resourceVersion"])

    async def _follow(self, kind: Kind, cls: type, cache: dict[Any, Any]) -> None:
        key: Callable[[Any], Any] = (
            (lambda o: o.metadata.name) if kind is NETWORK else (lambda o: _key(o.metadata)))
        while True:
            try:
                revision = await self._relist(kind, cls, cache, key)
                async for event in self._api().watch(kind, resource_version=revision):
                    try:
                        obj = decode(cls, event["object"])
                    except DecodeError as exc:
                        log.warning("ignoring an unreadable %s: %s", kind.name, exc)
                        continue
                    if event["type"] == "DELETED":
                        cache.pop(key(obj), None)
                    else:
                        cache[key(obj)] = obj
                    self._dirty.set()
            except ApiError as exc:
                log.warning("watching %s: %s; retrying", kind.plural, exc.message)
                await asyncio.sleep(1.0)

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.resync_seconds)
            # Re-program what someone may have flushed under us.
            self._peers.clear()
            self._force_mesh = True
            self._dirty.set()

    async def _apply_loop(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(SETTLE_SECONDS)
            self._dirty.clear()
            if not {NETWORK.name, ENDPOINTS.name} <= self._listed:
                continue  # never remove networks on the strength of half a picture
            try:
                await self.apply()
            except Exception:  # a bad round must not end the loop; the next one retries
                log.exception("applying cluster networks failed; retrying")
                await asyncio.sleep(1.0)
                self._dirty.set()

    # -- one round -----------------------------------------------------------------------

    async def apply(self) -> None:
        wanted, skipped = node_networks(self.networks.values(), self.node)
        self.problems = {s.network: s.reason for s in skipped}
        for name, cfg in sorted(wanted.items()):
            if self.configs.get(name) == cfg:
                continue
            try:
                await self.network.ensure_network(cfg)
            except NetworkError as exc:
                self.problems[name] = str(exc)
                log.warning("network %s: %s", name, exc)
                continue
            self.configs[name] = cfg
            self._peers.pop(name, None)
        for name in sorted((set(self.configs) | self._recorded) - set(wanted)):
            try:
                await self.network.remove_network(name)
            except NetworkError as exc:  # containers still on it: the next round retries
                log.info("network %s stays for now: %s", name, exc)
                continue
            self.configs.pop(name, None)
            self._recorded.discard(name)
            self._peers.pop(name, None)
        async with self._applied:
            self._applied.notify_all()
        endpoints = list(self.endpoints.values())
        for name in sorted(self.configs):
            net = self.networks.get(name)
            if net is None:
                continue
            want = frozenset(peers(net, endpoints, self.node))
            if self._peers.get(name) != want:
                await self.network.set_peers(name, want)
                self._peers[name] = want
        self._update_dns()
        await self.dns.set_addresses(str(c.gateway.ip) for c in self.configs.values())
        internal = {name: net.spec.internal for name, net in self.networks.items()}
        pubs, left_out = publications(endpoints, self.node, internal)
        for service, why in left_out:
            log.info("routing mesh: %s not published yet: %s", service, why)
        await self.mesh.update(pubs, force=self._force_mesh)
        self._force_mesh = False

    def _update_dns(self) -> None:
        local = Endpoints(metadata=ObjectMeta(name="", app=""),
                          addresses=list(self._local.values()))
        internal = {name for name, net in self.networks.items() if net.spec.internal}
        self.dns.update(NameTable.from_endpoints([*self.endpoints.values(), local],
                                                 internal=internal))


def local_address(node: str, vtep: str, task: str, hostname: str,
                  addresses: dict[str, str]) -> EndpointAddress:
    """How a task runner describes its container to ClusterNetworks (not ready: DNS only
    needs to know who is asking)."""
    return EndpointAddress(task=task, node=node, vtep=str(IPv4Address(vtep)),
                           hostname=hostname, ready=False, addresses=dict(addresses))
