"""`skiff up`, the README's main job, and `skiff down`, with real processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from agent.images.busybox import build_busybox_image
from agent.images.store import ImageStore
from controller.store.etcd_server import free_port
from skiff.cli import registry_proc
from tests.integration.cli import skiff
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HELLO = Path(__file__).resolve().parents[2] / "manifests" / "hello" / "app.yml"


def _kill_leftovers(state: Path) -> None:
    """If a test failed half-way, make sure nothing it started keeps running."""
    try:
        pids = json.loads((state / "up.json").read_text())
    except (FileNotFoundError, ValueError):
        return
    for key in ("agent_pid", "controller_pid", "etcd_pid", "registry_pid"):
        with contextlib.suppress(ProcessLookupError, KeyError):
            os.kill(pids[key], signal.SIGKILL)


def _status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return int(resp.status)


def _host_network() -> tuple[str, str]:
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return links, tables


async def test_up_apply_get_down(tmp_path: Path) -> None:
    state, config = tmp_path / "state", tmp_path / "config"
    env = {"SKIFF_CONFIG": str(config)}
    etcd_port, port = free_port("127.0.0.1"), free_port("127.0.0.1")
    tag = secrets.token_hex(3)
    bridge = f"sku{tag}"
    registry = f"127.0.0.1:{free_port('127.0.0.1')}"
    up_args = ["up", "--state-dir", str(state), "--etcd-port", str(etcd_port),
               "--registry-port", registry.rpartition(":")[2],
               "--port", str(port), "--agent-port", str(free_port("127.0.0.1")),
               "--node-name", f"up-{tag}", "--bridge", bridge,
               "--subnet", f"10.{random.randint(100, 250)}.{random.randint(0, 255)}.0/24"]
    try:
        res = await skiff(*up_args, env=env)
        assert res.code == 0, res.err
        assert "skiff is up" in res.out and f"registry {registry}" in res.out
        assert await asyncio.to_thread(_status, f"http://{registry}/v2/") == 200
        assert config.stat().st_mode & 0o777 == 0o600
        assert f"127.0.0.1:{port}" in config.read_text()

        again = await skiff(*up_args, env=env)
        assert again.code == 0 and "already up" in again.out

        res = await skiff("apply", "-f", str(HELLO), env=env)
        assert res.code == 0 and "app/hello created" in res.out, res

        async def three_running() -> bool:
            out = await skiff("get", "tasks", env=env)
            rows = out.out.strip().splitlines()[1:]
            return len(rows) == 3 and all(r.split()[4] == "running" for r in rows)

        await wait_for(three_running, "3 running tasks", timeout=60)

        async def said_hello() -> bool:
            out = await skiff("logs", "hello/web", "--tail", "1", env=env)
            return out.out.count("hello from web-") == 3

        await wait_for(said_hello, "each replica's output", timeout=30)
        res = await skiff("version", env=env)
        assert res.code == 0 and "server: skiff" in res.out
        await _runs_an_image_only_the_registry_has(tmp_path, registry, env)
    finally:
        down = await skiff("down", "--state-dir", str(state), "--purge", env=env)
        _kill_leftovers(state)
    assert down.code == 0 and "skiff is down" in down.out, down
    assert not state.exists()
    res = await skiff("get", "apps", env=env)
    assert res.code == 1 and "cannot reach the controller" in res.err
    assert registry_proc.find(state / "registry") == []
    assert not registry_proc.answers(registry)
    links, tables = _host_network()
    assert bridge not in links
    assert f"table ip {bridge}" not in tables


async def _runs_an_image_only_the_registry_has(tmp_path: Path, registry: str,
                                               env: dict[str, str]) -> None:
    """The local agent was given the registry: a bare name it lacks is pulled from there."""
    store = str(tmp_path / "laptop-images")
    await build_busybox_image(ImageStore(Path(store)))
    for args in (("tag", "busybox", f"{registry}/pulled:1"), ("push", f"{registry}/pulled:1")):
        res = await skiff(*args, "--store", store)
        assert res.code == 0, res
    app = tmp_path / "pulled.yml"
    app.write_text("name: pulled\nservices:\n  web:\n    image: pulled:1\n"
                   "    command: [sleep, '600']\n")
    res = await skiff("apply", "-f", str(app), env=env)
    assert res.code == 0, res

    async def running() -> bool:
        out = await skiff("get", "tasks", "--app", "pulled", env=env)
        rows = out.out.strip().splitlines()[1:]
        return len(rows) == 1 and rows[0].split()[4] == "running"

    await wait_for(running, "the task of an image pulled from the cluster registry",
                   timeout=60)
