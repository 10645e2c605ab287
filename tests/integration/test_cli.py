"""The `skiff` command against a real controller and etcd: what a user types and sees."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest
import yaml

from tests.integration.cli import SKIFF, skiff
from tests.integration.conftest import RunningController, wait_for

pytestmark = pytest.mark.integration

HELLO = Path(__file__).resolve().parents[2] / "manifests" / "hello" / "app.yml"


def _auth(controller: RunningController) -> list[str]:
    return ["--server", controller.url, "--token", controller.token]


def _with_replicas(tmp_path: Path, n: int) -> Path:
    doc = yaml.safe_load(HELLO.read_text())
    doc["services"]["web"]["deploy"]["replicas"] = n
    path = tmp_path / "hello" / "app.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


async def _task_rows(controller: RunningController, n: int,
                     saying: str = "") -> list[str] | None:
    res = await skiff("get", "tasks", *_auth(controller))
    assert res.code == 0, res.err
    rows = [line for line in res.out.splitlines()[1:] if line.strip()]
    return rows if len(rows) == n and all(saying in r for r in rows) else None


async def test_apply_get_scale_unchanged_delete(controller, tmp_path) -> None:
    res = await skiff("apply", "-f", str(HELLO), *_auth(controller))
    assert res.code == 0, res.err
    assert res.out.splitlines()[0] == "app/hello created"
    # No node has joined yet: each task waits and says why.
    rows = await wait_for(lambda: _task_rows(controller, 3, "no node has joined"),
                          "3 pending task rows with a reason")
    assert all(r.split()[3:5] == ["running", "pending"] for r in rows), rows

    five = _with_replicas(tmp_path, 5)
    res = await skiff("apply", "-f", str(five), *_auth(controller))
    assert res.code == 0 and "app/hello configured" in res.out, res
    await wait_for(lambda: _task_rows(controller, 5), "5 task rows")

    res = await skiff("apply", "-f", str(five), *_auth(controller))
    assert res.code == 0 and res.out.strip() == "app/hello unchanged"

    res = await skiff("delete", "-f", str(five), *_auth(controller))
    assert res.code == 0 and "app/hello deleted" in res.out, res
    res = await skiff("get", "tasks", *_auth(controller))
    assert res.out.strip() == "No tasks found."
    res = await skiff("get", "apps", *_auth(controller))
    assert res.out.strip() == "No apps found."


async def test_dry_run_prints_the_difference(controller, tmp_path) -> None:
    assert (await skiff("apply", "-f", str(HELLO), *_auth(controller))).code == 0
    res = await skiff("apply", "--dry-run", "-f", str(_with_replicas(tmp_path, 4)),
                      *_auth(controller))
    assert res.code == 0
    assert "app/hello configured (dry run)" in res.out
    assert "deploy.replicas: 3 -> 4" in res.out
    res = await skiff("get", "services", "-o", "json", *_auth(controller))
    assert json.loads(res.out)["items"][0]["spec"]["deploy"]["replicas"] == 3


async def test_get_formats_and_describe(controller) -> None:
    assert (await skiff("apply", "-f", str(HELLO), *_auth(controller))).code == 0
    await wait_for(lambda: _task_rows(controller, 3), "3 task rows")
    res = await skiff("get", "services", *_auth(controller))
    header, row = res.out.splitlines()[:2]
    assert header.split() == ["APP", "NAME", "IMAGE", "MODE", "REPLICAS", "PORTS", "AGE"]
    assert row.split()[:5] == ["hello", "web", "busybox", "replicated", "0/3"]
    res = await skiff("get", "tasks", "-o", "wide", *_auth(controller))
    assert "CONTAINER" in res.out.splitlines()[0]
    res = await skiff("get", "app", "hello", "-o", "yaml", *_auth(controller))
    assert yaml.safe_load(res.out)["metadata"]["name"] == "hello"
    res = await skiff("get", "tasks", "-o", "name", *_auth(controller))
    assert all(line.startswith("task/hello/web.") for line in res.out.splitlines())
    res = await skiff("describe", "service", "hello/web", *_auth(controller))
    assert res.code == 0, res.err
    assert "Replicas:" in res.out and "0 running / 3 desired" in res.out
    assert res.out.count("web.") >= 3  # the tasks table
    res = await skiff("describe", "service", "web", *_auth(controller))
    assert res.code == 1 and "APP/NAME" in res.err


async def test_get_watch_streams_changes(controller) -> None:
    proc = await asyncio.create_subprocess_exec(
        SKIFF, "get", "tasks", "-w", *_auth(controller), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        res = await skiff("apply", "-f", str(HELLO), *_auth(controller))
        assert res.code == 0
        lines: list[str] = []

        async def read_until_three_tasks() -> None:
            assert proc.stdout is not None
            while len({ln.split()[1] for ln in lines[1:] if ln.strip()}) < 3:
                line = await proc.stdout.readline()
                assert line, "the watch ended"
                lines.append(line.decode())

        await asyncio.wait_for(read_until_three_tasks(), 15)
        assert lines[0].split()[:3] == ["APP", "NAME", "NODE"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


async def test_errors_exit_non_zero_with_a_message(controller, tmp_path) -> None:
    bad = tmp_path / "app.yml"
    bad.write_text("name: x\nservices:\n  web:\n    image: busybox\n    ports:\n"
                   "      - \"80:80:80\"\n")
    res = await skiff("apply", "-f", str(bad), *_auth(controller))
    assert res.code == 1
    assert f"{bad}:6:" in res.err and "services.web.ports[0]" in res.err
    res = await skiff("get", "apps", "--server", controller.url, "--token", "skf.x.y")
    assert res.code == 1 and "invalid or expired token" in res.err
    res = await skiff("get", "gadgets", *_auth(controller))
    assert res.code == 1 and "unknown kind" in res.err
    res = await skiff("delete", "app", "nothere", *_auth(controller))
    assert res.code == 1 and "not found" in res.err
    res = await skiff("apply", "-f", str(tmp_path / "missing.yml"), *_auth(controller))
    assert res.code == 1 and "no such file" in res.err
    res = await skiff("get", "apps", "--server", "http://127.0.0.1:9", "--token", "t")
    assert res.code == 1 and "cannot reach the controller" in res.err


async def test_config_needs_no_server(tmp_path) -> None:
    res = await skiff("config", "-f", str(HELLO), env={"SKIFF_CONFIG": str(tmp_path / "none")})
    assert res.code == 0, res.err
    doc = yaml.safe_load(res.out)
    assert doc["name"] == "hello"
    assert doc["services"]["web"]["deploy"]["replicas"] == 3
    res = await skiff("config", "-q", "-f", str(HELLO))
    assert res.code == 0 and res.out == ""
    res = await skiff("config", "-f", "-", stdin="services: [1]\n")
    assert res.code == 1 and "<stdin>:1:" in res.err


async def test_no_token_anywhere(tmp_path) -> None:
    res = await skiff("get", "apps", env={"SKIFF_CONFIG": str(tmp_path / "none"),
                                          "SKIFF_TOKEN": ""})
    assert res.code == 1 and "no token" in res.err


async def test_a_list_of_controllers_fails_over(controller) -> None:
    dead = "http://127.0.0.1:9"
    res = await skiff("get", "apps", "--server", f"{dead},{controller.url}",
                      "--token", controller.token)
    assert res.code == 0, res.err
    res = await skiff("get", "apps", "--server", f"{dead},http://127.0.0.1:10",
                      "--token", controller.token)
    assert res.code == 1 and "http://127.0.0.1:9, http://127.0.0.1:10" in res.err
