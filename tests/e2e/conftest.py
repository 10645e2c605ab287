"""A real 3-node lab cluster for end-to-end tests, one per session.

`skiff lab up --nodes 3` under a unique lab name, subnet and ports, with the CLI config in
a temp dir; at the end `skiff lab down --purge`, then a check that nothing of the lab is
left: namespaces, links, nft tables in the root namespace, processes, cgroups, state.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any, TypeVar

import pytest

from controller.store.etcd_server import free_port

SKIFF = str(Path(sys.executable).with_name("skiff"))
T = TypeVar("T")


def wait_for(predicate: Callable[[], T], what: str, timeout: float = 60.0,
             interval: float = 0.2) -> T:
    """Poll until ``predicate()`` is truthy; fail naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last saw {last!r}")


@dataclass
class Lab:
    name: str
    nodes: int
    subnet: IPv4Network
    state_dir: Path
    config: Path
    registry_port: int = 0

    @property
    def registry(self) -> str:
        """The lab's registry (plain HTTP), as agents and the CLI reach it."""
        return f"{self.gateway}:{self.registry_port}"

    @property
    def gateway(self) -> str:
        return str(self.subnet.network_address + 1)

    def node(self, i: int) -> str:
        return f"{self.name}-n{i}"

    def node_address(self, i: int) -> str:
        return str(self.subnet.network_address + 1 + i)

    def skiff(self, *args: str, timeout: float = 120,
              check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "SKIFF_CONFIG": str(self.config)}
        proc = subprocess.run([SKIFF, *args], capture_output=True, text=True, env=env,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"skiff {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}{proc.stderr}")
        return proc

    def lab(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return self.skiff("lab", *args, "--name", self.name, "--state-dir",
                          str(self.state_dir), timeout=timeout)

    def api_get(self, path: str, **params: str) -> Any:
        """GET from the controller as the CLI's user, without the CLI's start-up cost."""
        import urllib.parse
        import urllib.request

        from skiff.client.config import load_config

        config = load_config(self.config)
        server = config.server.split(",")[0]
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        request = urllib.request.Request(f"{server}{path}{query}",
                                         headers={"Authorization": f"Bearer {config.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def pids(self, role: str) -> dict[str, int]:
        """``skiff lab status``'s processes of one role: name -> pid."""
        rows = [line.split() for line in self.lab("status").stdout.splitlines()[1:]]
        return {r[1]: int(r[2]) for r in rows if r[0] == role and r[2].isdigit()}

    def tasks(self, app: str) -> list[dict[str, Any]]:
        out = self.skiff("get", "tasks", "--app", app, "-o", "json").stdout
        return list(json.loads(out)["items"])

    def apply(self, manifest: str) -> None:
        path = self.state_dir.parent / "app.yml"
        path.write_text(manifest)
        self.skiff("apply", "-f", str(path))


def leftovers(name: str, state_dir: Path, nodes: int) -> list[str]:
    from agent.runtime import cgroups

    found = []
    netns = Path("/run/netns")
    if netns.exists():
        found += [f"netns {p.name}" for p in netns.iterdir()
                  if p.name.startswith((f"{name}-", f"sk-{name}-"))]
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    found += [f"link {line.split()[0]}" for line in links.splitlines()
              if line.split() and line.split()[0].startswith((f"{name}-", f"sk-{name}-"))]
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    found += [f"nft {t}" for t in tables.splitlines() if name in t]
    marker = f"{state_dir}/".encode()
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes():
                found.append(f"process {proc.name}")
    for i in range(1, nodes + 1):
        found += [f"cgroup {d}" for d in cgroups.existing_dirs(f"/skiff/{name}-n{i}")]
    if state_dir.exists():
        found.append(f"state dir {state_dir}")
    if Path(f"/run/skiff-lab/{name}").exists():
        found.append(f"/run/skiff-lab/{name}")
    return found


def _kill_everything(state_dir: Path) -> None:
    """Last resort when `lab down` itself failed: nothing may outlive the session."""
    marker = f"{state_dir}/".encode()
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError):
            if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)


@contextlib.contextmanager
def running_lab(nodes: int, ha: bool = False) -> Iterator[Lab]:
    """`skiff lab up` with a unique name, subnet and ports; `lab down --purge` after, and
    nothing of it may be left."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    base = Path(tempfile.mkdtemp(prefix="skiff-e2e-"))
    name = f"e2e{secrets.token_hex(3)}"
    subnet = _unused_subnet()
    the_lab = Lab(name, nodes, subnet, base / "state", base / "config", free_port())
    port = free_port()
    while ha and not _free(port + 1):
        port = free_port()
    try:
        up = the_lab.skiff("lab", "up", "--nodes", str(nodes), "--name", name, "--state-dir",
                           str(the_lab.state_dir), "--subnet", str(subnet), "--port",
                           str(port), "--registry-port", str(the_lab.registry_port),
                           *(["--ha"] if ha else []), timeout=240)
        assert f"lab {name} is up" in up.stdout, up.stdout
        assert the_lab.config.stat().st_mode & 0o777 == 0o600
        yield the_lab
    finally:
        down = the_lab.skiff("lab", "down", "--name", name, "--state-dir",
                             str(the_lab.state_dir), "--purge", timeout=120, check=False)
        left = leftovers(name, the_lab.state_dir, the_lab.nodes)
        if left:  # fail, but leave the machine clean for what runs next
            the_lab.skiff("lab", "down", "--name", name, "--state-dir",
                          str(the_lab.state_dir), "--purge", timeout=120, check=False)
            _kill_everything(the_lab.state_dir)
        shutil.rmtree(base, ignore_errors=True)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not left, f"lab down left things behind: {left}"


def _unused_subnet() -> IPv4Network:
    """A /24 no interface uses, outside the ranges other tests pick (10.100-250.x) and the
    lab's container ranges (10.88.x)."""
    in_use = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True,
                            text=True).stdout
    while True:
        first_three = f"10.{random.randint(60, 87)}.{random.randint(0, 255)}"
        if f"inet {first_three}." not in in_use:
            return IPv4Network(f"{first_three}.0/24")


def _free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """Three nodes, shared by every e2e test: tests that cut a node off bring it back."""
    with running_lab(3) as the_lab:
        yield the_lab
