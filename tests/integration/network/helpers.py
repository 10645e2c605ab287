"""Helpers for the network integration tests: commands, polling, lab nodes.

Real netlink, nftables and namespaces, as root, on throwaway lab nodes.

Every NodeNetwork under test lives in a "node" network namespace made with `ip netns add`
(what a lab node is), so the host's root namespace keeps its forwarding setting and its
nftables ruleset. All names carry a per-test token (`sktest<hex>`): bridge, nft table
(`skiff_test<hex>`), container namespace prefix, node namespaces and uplink veths, so the
fixture can remove whatever a failing test left behind and then prove nothing remains.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest

from agent.network import NodeNetwork
from tests.integration.nstools import NETNS_DIR, netns_names

BUSYBOX = "/bin/busybox"


def is_root() -> bool:
    return os.geteuid() == 0


needs_root = pytest.mark.skipif(not is_root(), reason="needs root for netlink and netns")


async def sh(*cmd: str, check: bool = True, stdin: bytes | None = None,
             timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Run a command without blocking the event loop."""
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    done = subprocess.CompletedProcess(list(cmd), proc.returncode or 0, out.decode(),
                                       err.decode())
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {done.returncode}: {done.stderr}")
    return done


def in_ns(path: Path | str, *cmd: str) -> tuple[str, ...]:
    # Only the network namespace: never `ip netns exec` (it remounts /sys).
    return ("nsenter", f"--net={path}", *cmd)


async def eventually(check: Callable[[], Awaitable[bool]], what: str,
                     deadline: float = 10.0) -> None:
    """Poll `check` until it holds or the deadline passes (no sleeps as synchronisation)."""
    end = time.monotonic() + deadline
    while True:
        if await check():
            return
        if time.monotonic() > end:
            raise AssertionError(f"not within {deadline}s: {what}")
        await asyncio.sleep(0.05)


async def pings(from_netns: Path | str, ip: IPv4Address | str, deadline: float = 10.0) -> None:
    async def once() -> bool:
        res = await sh(*in_ns(from_netns, BUSYBOX, "ping", "-c1", "-W1", str(ip)), check=False)
        return res.returncode == 0
    await eventually(once, f"ping {ip} from {from_netns}", deadline)


@dataclass
class Node:
    """A lab node: a namespace, optionally with an uplink veth to the root namespace."""
    name: str
    path: Path
    uplink_root: IPv4Interface | None = None  # root namespace's end
    uplink_node: IPv4Interface | None = None  # the node's address, its NAT source


class Lab:
    def __init__(self, tmp: Path) -> None:
        self.token = "sktest" + secrets.token_hex(3)
        self.tmp = tmp
        self.nodes: list[Node] = []
        self.networks: list[NodeNetwork] = []
        self._octets = random.sample(range(256), 16)

    async def node(self, uplink: bool = False) -> Node:
        name = f"{self.token}node{len(self.nodes)}"
        node = Node(name, NETNS_DIR / name)
        self.nodes.append(node)
        await sh("ip", "netns", "add", name)
        await sh("ip", "-n", name, "link", "set", "lo", "up")
        if uplink:
            base = IPv4Address(f"10.212.{random.randrange(256)}.{random.randrange(64) * 4}")
            node.uplink_root = IPv4Interface(f"{base + 1}/30")
            node.uplink_node = IPv4Interface(f"{base + 2}/30")
            root_end = f"{self.token}u{len(self.nodes) - 1}"
            await sh("ip", "link", "add", root_end, "type", "veth", "peer", "name", "eth0",
                     "netns", name)
            await sh("ip", "addr", "add", str(node.uplink_root), "dev", root_end)
            await sh("ip", "link", "set", root_end, "up")
            await sh("ip", "-n", name, "addr", "add", str(node.uplink_node), "dev", "eth0")
            await sh("ip", "-n", name, "link", "set", "eth0", "up")
            await sh("ip", "-n", name, "route", "add", "default", "via",
                     str(node.uplink_root.ip))
        return node

    def network(self, node: Node | None, **kw: object) -> NodeNetwork:
        i = len(self.networks)
        opts: dict[str, object] = {
            "subnet": f"10.213.{self._octets[i]}.0/24",
            "bridge": f"{self.token}b{i}",
            "nft_table": f"skiff_test{self.token[6:]}_{i}",
            "netns_prefix": f"{self.token}n{i}-",
            "node_netns": None if node is None else node.path,
        }
        opts.update(kw)
        net = NodeNetwork(self.tmp / f"state{i}", **opts)  # type: ignore[arg-type]
        self.networks.append(net)
        return net

    async def cleanup(self) -> None:
        for net in self.networks:
            if net.node_netns is not None and net.node_netns.name not in netns_names(self.token):
                continue
            try:
                await net.teardown()
            except Exception as exc:  # keep going: the node namespace goes anyway
                print(f"teardown of {net.bridge} failed: {exc}")
        for name in netns_names(self.token):
            await sh("ip", "netns", "del", name, check=False)
        links = (await sh("ip", "-o", "link", "show")).stdout
        for line in links.splitlines():
            ifname = line.split(":")[1].strip().split("@")[0]
            if ifname.startswith(self.token):
                await sh("ip", "link", "del", ifname, check=False)

    async def leftovers(self) -> list[str]:
        found = netns_names(self.token)
        found += [ln for ln in (await sh("ip", "-o", "link", "show")).stdout.splitlines()
                  if self.token in ln]
        found += [ln for ln in (await sh("nft", "list", "tables")).stdout.splitlines()
                  if self.token[6:] in ln]
        return found
