"""A lab for the node DNS server: a node namespace with two networks and an upstream.

    container ns (x3)                node ns                          upstream ns
    probe  eth0 10.1.0.41 (+.99) ─┐
    web1   eth0 10.1.0.11 ───────┬┴─ bridge <tok>bf 10.1.0.1/24 (front)
           eth1 10.2.0.11 ──────┐│
    db1    eth0 10.2.0.21 ──────┴┴── bridge <tok>bb 10.2.0.1/24 (back)
                                     <tok>u 10.3.0.1/24 ──────────── eth0 10.3.0.53/24

Every namespace carries a per-lab token (t4 + 6 hex) and every link lives inside the
lab's namespaces, never in the root one, so labs run beside other engineers' network
tests; deleting the namespaces deletes the links. `close()` is safe on a half-built lab.
Synchronous on purpose: it only runs `ip` and is called from fixtures.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import dns.message
import dns.query

from agent.network.netns import create_netns, remove_netns, run_in_netns
from tests.integration.nstools import NETNS_DIR, netns_names, sh

T = TypeVar("T")

BUSYBOX = "/bin/busybox"
FRONT_GW = "10.1.0.1"
BACK_GW = "10.2.0.1"
UPSTREAM_GW = "10.3.0.1"
UPSTREAM_IP = "10.3.0.53"
DEAD_UPSTREAM = "10.3.0.54"  # on-link, nobody there: queries to it time out
PROBE_IP = "10.1.0.41"
STRANGER_IP = "10.1.0.99"  # a second address of probe's eth0 that no Endpoints lists
WEB1_FRONT, WEB1_BACK = "10.1.0.11", "10.2.0.11"
DB1_IP = "10.2.0.21"


@dataclass
class DnsLab:
    token: str = field(default_factory=lambda: "t4" + secrets.token_hex(3))
    made: list[Path] = field(default_factory=list)

    def ns(self, role: str) -> Path:
        return NETNS_DIR / f"{self.token}{role}"

    @property
    def node(self) -> Path:
        return self.ns("node")

    @property
    def upstream(self) -> Path:
        return self.ns("up")

    def _netns(self, role: str) -> Path:
        path = self.ns(role)
        create_netns(path)
        self.made.append(path)
        sh("ip", "-n", path.name, "link", "set", "lo", "up")
        return path

    def _ip(self, path: Path, *args: str) -> None:
        sh("ip", "-n", path.name, *args)

    def _veth(self, inside: Path, ifname: str, host_end: str, addresses: list[str],
              bridge: str | None = None, host_address: str | None = None) -> None:
        """A veth from the node namespace into `inside`, named `ifname` there."""
        self._ip(self.node, "link", "add", host_end, "type", "veth", "peer", "name", ifname,
                 "netns", inside.name)
        if bridge is not None:
            self._ip(self.node, "link", "set", host_end, "master", bridge)
        if host_address is not None:
            self._ip(self.node, "addr", "add", host_address, "dev", host_end)
        self._ip(self.node, "link", "set", host_end, "up")
        for address in addresses:
            self._ip(inside, "addr", "add", address, "dev", ifname)
        self._ip(inside, "link", "set", ifname, "up")

    def up(self, back_gateway: bool = True) -> DnsLab:
        """Build it. back_gateway=False leaves the back bridge without its address, for
        a test that listens before the address exists."""
        self._netns("node")
        for bridge, gateway in (("bf", FRONT_GW), ("bb", BACK_GW)):
            name = self.token + bridge
            self._ip(self.node, "link", "add", name, "type", "bridge")
            if gateway != BACK_GW or back_gateway:
                self._ip(self.node, "addr", "add", f"{gateway}/24", "dev", name)
            self._ip(self.node, "link", "set", name, "up")
        probe, web1, db1 = self._netns("probe"), self._netns("web1"), self._netns("db1")
        self._veth(probe, "eth0", self.token + "p0", [f"{PROBE_IP}/24", f"{STRANGER_IP}/24"],
                   bridge=self.token + "bf")
        self._veth(web1, "eth0", self.token + "w0", [f"{WEB1_BACK}/24"],
                   bridge=self.token + "bb")
        self._veth(web1, "eth1", self.token + "w1", [f"{WEB1_FRONT}/24"],
                   bridge=self.token + "bf")
        self._veth(db1, "eth0", self.token + "d0", [f"{DB1_IP}/24"], bridge=self.token + "bb")
        up = self._netns("up")
        self._veth(up, "eth0", self.token + "u", [f"{UPSTREAM_IP}/24"],
                   host_address=f"{UPSTREAM_GW}/24")
        return self

    def add_back_gateway(self) -> None:
        self._ip(self.node, "addr", "add", f"{BACK_GW}/24", "dev", self.token + "bb")

    def close(self) -> None:
        for path in reversed(self.made):
            try:
                remove_netns(path)
            except OSError as exc:  # keep going: the others must go too
                print(f"removing {path}: {exc}")
        for name in netns_names(self.token):  # made by a half-finished create
            remove_netns(NETNS_DIR / name)

    def leftovers(self) -> list[str]:
        return netns_names(self.token)

    def run_in(self, role: str, fn: Callable[..., T], *args: object) -> T:
        """fn(*args) inside one of the lab's namespaces (blocking)."""
        return run_in_netns(self.ns(role), fn, *args)

    def busybox(self, role: str, *args: str) -> subprocess.CompletedProcess[str]:
        # A child inherits the namespace of the thread that forks it.
        return self.run_in(role, lambda: sh(BUSYBOX, *args, check=False))


def query(name: str, server: str, rdtype: str = "A", source: str | None = None,
          tcp: bool = False, edns: bool = False, timeout: float = 3.0) -> dns.message.Message:
    """One query with dnspython (blocking: run it in a container's namespace)."""
    q = dns.message.make_query(name, rdtype, use_edns=0 if edns else False)
    if tcp:
        return dns.query.tcp(q, server, timeout=timeout, source=source)
    return dns.query.udp(q, server, timeout=timeout, source=source)
