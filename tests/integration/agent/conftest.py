"""A real node for agent tests: the in-process controller plus an agent process (so a
test may kill -9 it) with its own bridge, range, state and cgroup parent, and a busybox
image. Everything it made is removed afterwards, and checked to be gone."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.images.busybox import build_busybox_image
from agent.images.store import ImageStore
from agent.runtime import cgroups
from agent.settings import AgentSettings
from agent.teardown import teardown
from controller.store.etcd_server import free_port
from skiff.client.api import ApiClient, ApiError
from skiff.models.kinds import NODE
from tests.integration.conftest import RunningController, wait_for


@dataclass
class RunningNode:
    controller: RunningController
    settings: AgentSettings
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def runc_root(self) -> Path:
        return self.settings.state_dir / "runc"

    def start_agent(self) -> None:
        s = self.settings
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "skiff.cli.main", "agent", "--server", s.server,
                 "--token", s.token, "--name", s.name, "--state-dir", str(s.state_dir),
                 "--port", str(s.port), "--subnet", s.subnet, "--bridge", s.bridge,
                 "--ifprefix", s.ifprefix],
                stdout=log, stderr=log, start_new_session=True)

    def kill_agent(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop_agent(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-3000:]
        return ""

    async def wait_ready(self, api: ApiClient) -> None:
        async def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the agent exited:\n{self.log_tail()}")
            try:
                node = await api.get(NODE, self.settings.name)
            except ApiError:
                return False
            return bool(node["status"].get("ready"))
        await wait_for(ready, "the node to register", timeout=30)


def _leftovers(settings: AgentSettings) -> list[str]:
    found = []
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    names = [line.split()[0].split("@")[0] for line in links.splitlines() if line.split()]
    # The node's bridge, and its cluster networks' bridges, VXLAN devices and veths.
    found += [n for n in names if n == settings.bridge or n.startswith(settings.ifprefix)]
    netns = Path("/run/netns")
    if netns.exists():
        found += [p.name for p in netns.iterdir() if p.name.startswith(settings.netns_prefix)]
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    found += [t for t in tables.splitlines()
              if t.endswith((f" {settings.nft_table}", f" {settings.mesh_table}"))]
    found += [str(d) for d in cgroups.existing_dirs("/" + settings.cgroup_parent)]
    return found


def _kill_stray_agent(pid_file: Path) -> None:
    with contextlib.suppress(OSError, ValueError, ProcessLookupError):
        pid = int(pid_file.read_text())
        if b"agent" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
async def node(controller: RunningController) -> AsyncIterator[RunningNode]:
    tag = secrets.token_hex(3)
    base = Path(tempfile.mkdtemp(prefix="skiff-node-"))
    name = f"node-{tag}"
    settings = AgentSettings(
        server=controller.url, token=(controller.state_dir / "join.token").read_text().strip(),
        name=name, state_dir=base / "agent",
        port=free_port("127.0.0.1"), subnet=f"10.{random.randint(100, 250)}."
                                            f"{random.randint(0, 255)}.0/24",
        bridge=f"skt{tag}", nft_table=f"skt{tag}", netns_prefix=f"skt{tag}-",
        ifprefix=f"t{tag[:5]}",
        cgroup_parent=f"skiff/{name}")  # what `skiff agent` uses
    running = RunningNode(controller, settings, base / "agent.log")
    try:
        await build_busybox_image(ImageStore(settings.images))
        running.start_agent()
        async with controller.client() as api:
            await running.wait_ready(api)
        yield running
    finally:
        running.kill_agent()
        _kill_stray_agent(settings.state_dir / "agent.pid")
        await teardown(settings, grace_seconds=1)
        with contextlib.suppress(OSError):
            await asyncio.to_thread(cgroups.remove, "/" + settings.cgroup_parent)
        left = _leftovers(settings)
        shutil.rmtree(base, ignore_errors=True)
        assert not left, f"the node left things behind: {left}"
