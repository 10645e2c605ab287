"""`skiff up`, the README's main job, and `skiff down`, with real processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import pytest

from controller.store.etcd_server import free_port
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
    for key in ("controller_pid", "etcd_pid"):
        with contextlib.suppress(ProcessLookupError, KeyError):
            os.kill(pids[key], signal.SIGKILL)


async def test_up_apply_get_down(tmp_path: Path) -> None:
    state, config = tmp_path / "state", tmp_path / "config"
    env = {"SKIFF_CONFIG": str(config)}
    etcd_port, port = free_port("127.0.0.1"), free_port("127.0.0.1")
    up_args = ["up", "--state-dir", str(state), "--etcd-port", str(etcd_port),
               "--port", str(port)]
    try:
        res = await skiff(*up_args, env=env)
        assert res.code == 0, res.err
        assert "skiff is up" in res.out
        assert config.stat().st_mode & 0o777 == 0o600
        assert f"127.0.0.1:{port}" in config.read_text()

        again = await skiff(*up_args, env=env)
        assert again.code == 0 and "already up" in again.out

        res = await skiff("apply", "-f", str(HELLO), env=env)
        assert res.code == 0 and "app/hello created" in res.out, res

        async def three_tasks() -> bool:
            out = await skiff("get", "tasks", env=env)
            return len(out.out.strip().splitlines()) == 4  # header + 3

        await wait_for(three_tasks, "3 tasks", timeout=30)
        res = await skiff("version", env=env)
        assert res.code == 0 and "server: skiff" in res.out
    finally:
        down = await skiff("down", "--state-dir", str(state), "--purge", env=env)
        _kill_leftovers(state)
    assert down.code == 0 and "skiff is down" in down.out, down
    assert not state.exists()
    res = await skiff("get", "apps", env=env)
    assert res.code == 1 and "cannot reach the controller" in res.err
