"""NodeNetwork: the async face of one node's container network.

Every netlink, mount, sysctl and nft call blocks and depends on the calling thread's network
namespace, so each runs via asyncio.to_thread and never on the event loop. By default the
node's namespace is the agent process's own (whatever `nsenter --net=...` put it in); with
`node_netns` set, each call runs on a fresh thread that enters that namespace first, which
lets one process (a test, a lab) drive several nodes.

Two kinds of container network, side by side while the agent moves from one to the other:
- the node's single bridge (ensure / attach / detach): one range, outbound NAT;
- cluster networks joined across nodes by VXLAN (ensure_network / set_peers /
  attach_networks / remove_network), docs/networking.md "On each node".
Both share one nftables table, rebuilt as a whole from everything ensured (firewall.py).

Where things live (all configurable, so several agents on one machine never collide):
  bridge `bridge` and table `ip <nft_table>`  in the node's namespace
  network devices <ifprefix>b<vni>, <ifprefix>x<vni>, veths <ifprefix>v<hex>  (naming.py)
  container namespaces                         <netns_dir>/<netns_prefix><id>
  IPAM and endpoint records                    <state_dir>/ipam/, <state_dir>/endpoints/
  cluster networks and their containers        <state_dir>/networks/, <state_dir>/attachments/
Two NodeNetworks need distinct bridge, nft_table, netns_prefix, ifprefix and state_dir;
ranges must not overlap when they share a namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path
from typing import TypeVar

from agent.network import bridge as br
from agent.network.attach import Attachment, Attachments, NetworkEndpoint
from agent.network.config import NetworkConfig, Peer
from agent.network.devices import VXLAN_PORT
from agent.network.endpoint import Endpoint, Endpoints, check_id
from agent.network.errors import NetworkError
from agent.network.firewall import Lan
from agent.network.ipam import Ipam
from agent.network.naming import DEFAULT_PREFIX
from agent.network.netns import run_in_netns
from agent.network.overlay import Overlays
from agent.network.peers import PeerChanges

T = TypeVar("T")

DEFAULT_NETNS_DIR = Path("/run/netns")


class NodeNetwork:
    def __init__(self, state_dir: Path | str, subnet: IPv4Network | str = "10.88.0.0/24",
                 bridge: str = "skiff0", nft_table: str = "skiff",
                 netns_prefix: str = "skiff-", *, netns_dir: Path | str = DEFAULT_NETNS_DIR,
                 node_netns: Path | str | None = None, ifprefix: str = DEFAULT_PREFIX,
                 vxlan_port: int = VXLAN_PORT) -> None:
        self.state_dir = Path(state_dir)
        self.ipam = Ipam(self.state_dir / "ipam", subnet)
        self.subnet = self.ipam.subnet
        self.bridge = br.check_ifname(bridge)
        self.nft_table = br.check_table(nft_table)
        if "/" in netns_prefix or not netns_prefix:
            raise NetworkError(f"invalid netns prefix {netns_prefix!r}")
        self.netns_prefix = netns_prefix
        self.node_netns = None if node_netns is None else Path(node_netns)
        self._eps = Endpoints(self.state_dir, self.ipam, self.bridge, Path(netns_dir),
                              netns_prefix)
        self._overlays = Overlays(self.state_dir, ifprefix, self.nft_table, vxlan_port,
                                  legacy=Lan(self.bridge, self.subnet))
        self.ifprefix = self._overlays.prefix
        self._atts = Attachments(self.state_dir, self._overlays, Path(netns_dir), netns_prefix)
        # Network-level changes (devices, the shared nft table) one at a time.
        self._net_lock = asyncio.Lock()
        # Attaches in flight per network, and networks being removed: checked and changed
        # on the event loop with no await in between, so a removal and an attach of the
        # same network can never interleave.
        self._attaching: dict[str, int] = {}
        self._removing: set[str] = set()
        # One attach/detach per container at a time within this process; across processes
        # IPAM's lock and O_EXCL files keep addresses unique.
        # Entries are (lock, [users]) and go away with their last user.
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    @property
    def gateway(self) -> IPv4Interface:
        return self.ipam.gateway

    def netns_path(self, container_id: str) -> Path:
        return self._eps.netns_path(check_id(container_id))

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        work = asyncio.ensure_future(
            asyncio.to_thread(run_in_netns, self.node_netns, fn, *args))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            # A thread cannot be stopped. Let the (short) netlink work finish before the
            # cancellation releases the per-container lock, so a following detach never
            # races a half-done attach.
            while not work.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait([work])
            if not work.cancelled():
                work.exception()  # mark retrieved: the caller is gone, the outcome stays
            raise

    @asynccontextmanager
    async def _exclusive(self, container_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault(container_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[container_id]

    def _ensure(self) -> None:
        br.ensure_bridge(self.bridge, self.gateway)
        br.enable_ip_forward()
        self._overlays.apply_firewall()  # the bridge's rules, and every network's

    async def ensure(self) -> None:
        """Bridge with the gateway address, forwarding on, NAT table in place. Repeatable."""
        async with self._net_lock:
            await self._run(self._ensure)

    async def attach(self, container_id: str) -> Endpoint:
        async with self._exclusive(container_id):
            return await self._run(self._eps.attach, container_id)

    async def detach(self, container_id: str) -> None:
        """Remove the container's endpoints, of either kind; repeatable."""
        def both() -> None:
            self._eps.detach(container_id)
            self._atts.detach(container_id)
        async with self._exclusive(container_id):
            await self._run(both)

    async def endpoints(self) -> list[Endpoint]:
        return await self._run(self._eps.list_endpoints)

    async def stale(self) -> list[str]:
        """Ids with leftovers (an address or a record) but no intact endpoint: candidates
        for detach when the agent adopts after a restart."""
        def find() -> list[str]:
            live = {ep.container_id for ep in self._eps.list_endpoints()}
            live |= {att.container_id for att in self._atts.list_attachments()}
            return sorted((self._eps.known_ids() | self._atts.known_ids()) - live)
        return await self._run(find)

    def _teardown(self) -> None:
        for cid in sorted(self._eps.known_ids()):
            self._eps.detach(cid)
        for cid in sorted(self._atts.known_ids()):
            self._atts.detach(cid)
        self._overlays.teardown()
        br.remove_nat(self.nft_table)
        br.remove_link(self.bridge)
        self.ipam.reset()

    async def teardown(self) -> None:
        """Remove everything this node network made: endpoints, cluster networks (bridges,
        VXLAN devices), the nft table, the bridge, IPAM state. IPv4 forwarding stays on:
        other things on the node may rely on it."""
        async with self._net_lock:
            await self._run(self._teardown)

    # ---- cluster networks (VXLAN overlay) ---------------------------------------------

    async def ensure_network(self, cfg: NetworkConfig) -> None:
        """The network's bridge (the slice's gateway, the whole network's prefix), VXLAN
        port and firewall rules on this node. Repeatable; applies a changed slice or VTEP."""
        async with self._net_lock:
            if cfg.name in self._removing:
                raise NetworkError(f"network {cfg.name} is being removed")
            await self._run(self._overlays.ensure, cfg)

    async def remove_network(self, name: str) -> None:
        """The network's devices, rules and state; refused (NetworkError) while containers
        are attached to it, or attaching. Removing an unknown network is fine."""
        async with self._net_lock:
            if self._attaching.get(name):
                raise NetworkError(f"network {name}: a container is being attached to it")
            self._removing.add(name)
            try:
                await self._run(lambda: self._overlays.remove(name, self._atts.holders(name)))
            finally:
                self._removing.discard(name)

    async def set_peers(self, name: str, peers: Iterable[Peer]) -> PeerChanges:
        """Make the network's remote addresses exactly `peers` (forwarding and neighbour
        entries on its VXLAN device); peers on this node's VTEP are ignored. Returns what
        changed."""
        wanted = frozenset(peers)
        async with self._net_lock:
            return await self._run(self._overlays.set_peers, name, wanted)

    async def networks(self) -> list[NetworkConfig]:
        """The networks ensured on this node (also those of an earlier agent process)."""
        return await self._run(self._overlays.configs)

    async def attach_networks(self, container_id: str,
                              cfgs: Sequence[NetworkConfig]) -> list[NetworkEndpoint]:
        """Put the container on `cfgs` (ensured first), eth0 on the first; the default
        route via the first non-internal one. Repeatable; a failure leaves nothing behind."""
        cfgs = list(cfgs)
        check_id(container_id)
        for cfg in cfgs:
            if cfg.name in self._removing:
                raise NetworkError(f"network {cfg.name} is being removed")
        for cfg in cfgs:
            self._attaching[cfg.name] = self._attaching.get(cfg.name, 0) + 1
        try:
            async with self._exclusive(container_id):
                att = await self._run(self._atts.attach, container_id, cfgs)
        finally:
            for cfg in cfgs:
                self._attaching[cfg.name] -= 1
                if not self._attaching[cfg.name]:
                    del self._attaching[cfg.name]
        return list(att.endpoints)

    async def attachments(self) -> list[Attachment]:
        """Containers on cluster networks whose namespace still exists (adoption)."""
        return await self._run(self._atts.list_attachments)
