"""A lab for the routing mesh, shared by its integration tests and bench/net.py.

    client ns                     node ns                          backend ns (x N)
    t5<tok>uc 192.168.55.2/24 ── t5<tok>up 192.168.55.1/24, .3/24
                                  bridge t5<tok>br 10.55.0.1/24 ── t5<tok>e<i> 10.55.0.<10+i>

Every namespace, link and table carries a per-lab token (t5 + 6 hex), so labs run side by
side with other engineers' network tests; links are made inside the lab's namespaces, never
in the root one. Each backend runs server.py (TCP and UDP, answers its own name and the
peer address it sees). `close()` kills the servers and deletes the namespaces (their links
and the node's nft tables go with them) and is safe to call on a half-built lab.

Synchronous on purpose: the bench is synchronous, and tests call it from fixtures.
"""

from __future__ import annotations

import secrets
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from agent.network.netns import run_in_netns
from tests.integration.nstools import NETNS_DIR, netns_names, sh

T = TypeVar("T")

SERVER = Path(__file__).with_name("server.py")
NODE_IP = "192.168.55.1"
NODE_IP2 = "192.168.55.3"  # a second address of the node, for host_ip tests
CLIENT_IP = "192.168.55.2"
GATEWAY = "10.55.0.1"
BACKEND_PORT = 80


@dataclass
class Backend:
    name: str
    path: Path
    ip: str
    server: subprocess.Popen[bytes] | None = None


@dataclass
class MeshLab:
    backends_wanted: int = 3
    token: str = field(default_factory=lambda: "t5" + secrets.token_hex(3))
    backends: list[Backend] = field(default_factory=list)

    @property
    def node(self) -> Path:
        return NETNS_DIR / f"{self.token}n"

    @property
    def client(self) -> Path:
        return NETNS_DIR / f"{self.token}c"

    @property
    def table(self) -> str:
        return f"{self.token}mesh"

    def _netns(self, name: str) -> Path:
        sh("ip", "netns", "add", name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return NETNS_DIR / name

    def up(self) -> MeshLab:
        t = self.token
        node, client = f"{t}n", f"{t}c"
        self._netns(node)
        self._netns(client)
        sh("ip", "-n", node, "link", "add", f"{t}up", "type", "veth", "peer", "name", f"{t}uc",
           "netns", client)
        sh("ip", "-n", node, "addr", "add", f"{NODE_IP}/24", "dev", f"{t}up")
        sh("ip", "-n", node, "addr", "add", f"{NODE_IP2}/24", "dev", f"{t}up")
        sh("ip", "-n", node, "link", "set", f"{t}up", "up")
        sh("ip", "-n", client, "addr", "add", f"{CLIENT_IP}/24", "dev", f"{t}uc")
        sh("ip", "-n", client, "link", "set", f"{t}uc", "up")
        # The client can also reach the backends directly (through the node, no DNAT): the
        # baseline of the bench, and the "not for other hosts" test.
        sh("ip", "-n", client, "route", "add", "10.55.0.0/24", "via", NODE_IP)
        sh("ip", "-n", node, "link", "add", f"{t}br", "type", "bridge")
        sh("ip", "-n", node, "addr", "add", f"{GATEWAY}/24", "dev", f"{t}br")
        sh("ip", "-n", node, "link", "set", f"{t}br", "up")
        for i in range(self.backends_wanted):
            name = f"{t}b{i}"
            backend = Backend(name, self._netns(name), f"10.55.0.{10 + i}")
            self.backends.append(backend)
            sh("ip", "-n", node, "link", "add", f"{t}v{i}", "type", "veth", "peer", "name",
               f"{t}e{i}", "netns", name)
            sh("ip", "-n", node, "link", "set", f"{t}v{i}", "master", f"{t}br", "up")
            sh("ip", "-n", name, "addr", "add", f"{backend.ip}/24", "dev", f"{t}e{i}")
            sh("ip", "-n", name, "link", "set", f"{t}e{i}", "up")
            sh("ip", "-n", name, "route", "add", "default", "via", GATEWAY)
        for backend in self.backends:
            self.serve(backend)
        return self

    def serve(self, backend: Backend, deadline: float = 15.0) -> None:
        """Start the backend's server and wait until it listens."""
        backend.server = subprocess.Popen(
            ["nsenter", f"--net={backend.path}", sys.executable, str(SERVER), backend.name,
             str(BACKEND_PORT)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert backend.server.stdout is not None
        ready, _, _ = select.select([backend.server.stdout], [], [], deadline)
        if not ready or backend.server.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"the server of {backend.name} did not start")

    def in_client(self, fn: Callable[..., T], *args: object) -> T:
        return run_in_netns(self.client, fn, *args)

    def in_node(self, fn: Callable[..., T], *args: object) -> T:
        return run_in_netns(self.node, fn, *args)

    def close(self) -> None:
        for backend in self.backends:
            if backend.server is not None and backend.server.poll() is None:
                backend.server.kill()
            if backend.server is not None:
                backend.server.wait(10)
                if backend.server.stdout is not None:
                    backend.server.stdout.close()
        for name in netns_names(self.token):
            sh("ip", "netns", "del", name, check=False)

    def leftovers(self) -> list[str]:
        return netns_names(self.token)


# ---- clients (run them inside a namespace: lab.in_client(http_get, ...)) ---------------


def http_get(host: str, port: int, timeout: float = 3.0) -> str:
    """One request on a fresh connection; the body ("NAME PEER")."""
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := conn.recv(4096):
            data += chunk
    return data.split(b"\r\n\r\n", 1)[1].decode().strip()


def http_gets(host: str, port: int, count: int) -> list[str]:
    return [http_get(host, port) for _ in range(count)]


def udp_ask(host: str, port: int, timeout: float = 3.0, source_port: int = 0) -> str:
    """One datagram from a fresh socket (by default a fresh port, so a fresh conntrack
    entry); the answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", source_port))
        sock.settimeout(timeout)
        sock.connect((host, port))
        sock.send(b"hello")
        return sock.recv(4096).decode().strip()


def udp_asks(host: str, port: int, count: int) -> list[str]:
    return [udp_ask(host, port) for _ in range(count)]


def refused(fn: Callable[[], object]) -> tuple[bool, float]:
    """Whether fn was refused (RST or ICMP port unreachable), and how long that took."""
    start = time.monotonic()
    try:
        fn()
    except ConnectionRefusedError:
        return True, time.monotonic() - start
    except OSError:  # timeout, unreachable: not a refusal
        return False, time.monotonic() - start
    return False, time.monotonic() - start


def tcp_refused(host: str, port: int) -> tuple[bool, float]:
    return refused(lambda: http_get(host, port))


def udp_refused(host: str, port: int) -> tuple[bool, float]:
    return refused(lambda: udp_ask(host, port, timeout=3.0))


def node_tables(lab: MeshLab) -> str:
    return sh("nsenter", f"--net={lab.node}", "nft", "list", "tables").stdout


def read_sysctl(lab: MeshLab, name: str) -> str:
    path = Path("/proc/sys") / name.replace(".", "/")
    return lab.in_node(lambda: path.read_text().strip())
