"""NodeNetwork: the async face of one node's container network.

Every netlink, mount, sysctl and nft call blocks and depends on the calling thread's network
namespace, so each runs via asyncio.to_thread and never on the event loop. By default the
node's namespace is the agent process's own (whatever `nsenter --net=...` put it in); with
`node_netns` set, each call runs on a fresh thread that enters that namespace first, which
lets one process (a test, a lab) drive several nodes.

Where things live (all configurable, so several agents on one machine never collide):
  bridge `bridge` and table `ip <nft_table>`  in the node's namespace
  container namespaces                         <netns_dir>/<netns_prefix><id>
  IPAM and endpoint records                    <state_dir>/ipam/, <state_dir>/endpoints/
Two NodeNetworks need distinct bridge, nft_table, netns_prefix and state_dir; ranges must
not overlap when they share a namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path
from typing import TypeVar

from agent.network import bridge as br
from agent.network.endpoint import Endpoint, Endpoints, check_id
from agent.network.errors import NetworkError
from agent.network.ipam import Ipam
from agent.network.netns import run_in_netns

T = TypeVar("T")

DEFAULT_NETNS_DIR = Path("/run/netns")


class NodeNetwork:
    def __init__(self, state_dir: Path | str, subnet: IPv4Network | str = "10.88.0.0/24",
                 bridge: str = "skiff0", nft_table: str = "skiff",
                 netns_prefix: str = "skiff-", *, netns_dir: Path | str = DEFAULT_NETNS_DIR,
                 node_netns: Path | str | None = None) -> None:
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
        br.apply_nat(self.nft_table, self.bridge, self.subnet)

    async def ensure(self) -> None:
        """Bridge with the gateway address, forwarding on, NAT table in place. Repeatable."""
        await self._run(self._ensure)

    async def attach(self, container_id: str) -> Endpoint:
        async with self._exclusive(container_id):
            return await self._run(self._eps.attach, container_id)

    async def detach(self, container_id: str) -> None:
        async with self._exclusive(container_id):
            await self._run(self._eps.detach, container_id)

    async def endpoints(self) -> list[Endpoint]:
        return await self._run(self._eps.list_endpoints)

    async def stale(self) -> list[str]:
        """Ids with leftovers (an address or a record) but no intact endpoint: candidates
        for detach when the agent adopts after a restart."""
        def find() -> list[str]:
            live = {ep.container_id for ep in self._eps.list_endpoints()}
            return sorted(self._eps.known_ids() - live)
        return await self._run(find)

    def _teardown(self) -> None:
        for cid in sorted(self._eps.known_ids()):
            self._eps.detach(cid)
        br.remove_nat(self.nft_table)
        br.remove_bridge(self.bridge)
        self.ipam.reset()

    async def teardown(self) -> None:
        """Remove everything this node network made: endpoints, NAT table, bridge, IPAM
        state. IPv4 forwarding stays on: other things on the node may rely on it."""
        await self._run(self._teardown)
