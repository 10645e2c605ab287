"""The agent runs real, isolated containers with runc and reports their true state."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from skiff.client.api import ApiClient
from skiff.models.kinds import APP, NETWORK, TASK
from tests.integration.agent.conftest import RunningNode
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Sent as data (no compose interpolation), so $HOSTNAME reaches the shell as it is.
LOOP = ["sh", "-c", "while true; do echo hello from $HOSTNAME; sleep 1; done"]


def app(**services: dict) -> dict:
    return {"name": "hello", "services": services}


def web(replicas: int = 3, **extra: object) -> dict:
    return {"image": "busybox", "command": LOOP, "deploy": {"replicas": replicas}, **extra}


async def tasks_of(api: ApiClient, service: str | None = None) -> list[dict]:
    items = (await api.list(TASK, app="hello"))["items"]
    return sorted((t for t in items if service is None or t["spec"]["service"] == service),
                  key=lambda t: t["spec"]["slot"])


async def running(api: ApiClient, n: int, service: str = "web") -> list[dict] | None:
    tasks = [t for t in await tasks_of(api, service) if t["spec"]["desiredState"] == "running"]
    ok = len(tasks) == n and all(t["status"]["state"] == "running" for t in tasks)
    return tasks if ok else None


def runc_pids(node: RunningNode) -> dict[str, int]:
    out = subprocess.run(["runc", "--root", str(node.runc_root), "list", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    return {c["id"]: c["pid"] for c in json.loads(out or "null") or [] if c["status"] == "running"}


def runc_pids_now(node: RunningNode) -> dict[str, int] | None:
    """runc_pids for polling: `runc list` fails while a container's state directory is
    half made or half removed, which a poll must read as "not yet", not as an error."""
    try:
        return runc_pids(node)
    except subprocess.CalledProcessError:
        return None


async def test_replicas_run_isolated_and_limited(node: RunningNode) -> None:
    hog = {"image": "busybox", "restart": "no",
           "command": ["sh", "-c", "echo filling; head -c 200000000 /dev/zero | tail"],
           "deploy": {"resources": {"limits": {"memory": "16m"}}}}
    async with node.controller.client() as api:
        await api.apply(app(web=web(3), hog=hog), source="app.yml")
        tasks = await wait_for(lambda: running(api, 3), "3 running replicas", timeout=60)

        ips = [ipaddress.ip_address(t["status"]["ip"]) for t in tasks]
        assert len(set(ips)) == 3
        # From this node's slice of the app's default network.
        network = await api.get(NETWORK, "hello_default")
        mine = ipaddress.ip_network(network["status"]["nodes"][node.settings.name]["subnet"])
        assert all(ip in mine for ip in ips)
        assert all(t["status"]["networks"] == {"hello_default": t["status"]["ip"]}
                   for t in tasks)
        assert all(t["spec"]["nodeName"] == node.settings.name for t in tasks)
        assert len({t["status"]["containerId"] for t in tasks}) == 3

        first = tasks[0]["metadata"]["name"]
        ps = await api.task_exec("hello", first, ["ps", "-o", "pid,args"])
        assert ps["exitCode"] == 0, ps
        lines = ps["stdout"].strip().splitlines()[1:]
        pids = {int(line.split()[0]) for line in lines}
        assert 1 in pids and len(lines) <= 4, ps["stdout"]  # sh, sleep, ps: its own only
        assert lines[0].split(None, 1)[1].startswith("sh -c while true")
        hostnames = [(await api.task_exec("hello", t["metadata"]["name"], ["hostname"])
                      )["stdout"].strip() for t in tasks]
        assert hostnames == ["web-1", "web-2", "web-3"]
        status = await api.task_exec("hello", first, ["cat", "/proc/self/status"])
        assert "NoNewPrivs:\t1" in status["stdout"]

        missing = await api.task_exec("hello", first, ["/no/such/program"])
        assert missing["exitCode"] == 127 and "no/such/program" in missing["stderr"]
        failing = await api.task_exec("hello", first, ["sh", "-c", "echo oops >&2; exit 3"])
        assert (failing["exitCode"], failing["stderr"]) == (3, "oops\n")

        async def logged() -> bool:
            lines = [line async for line in api.task_logs("hello", first, tail=5)]
            return any(b"hello from web-1" in line for line in lines)
        await wait_for(logged, "the replica's output in its log")

        async def oom_killed() -> dict | None:
            hogs = await tasks_of(api, "hog")
            return hogs[0] if hogs and hogs[0]["status"]["state"] == "failed" else None
        dead = await wait_for(oom_killed, "the hog to be OOM-killed", timeout=60)
        assert dead["status"]["exitCode"] == 137
        assert dead["status"]["oomKilled"] is True
        assert dead["status"]["message"].startswith("OOMKilled")
        assert dead["status"]["restarts"] == 0  # restart: "no"


async def test_agent_restart_adopts_containers_and_restarts_the_killed_one(
        node: RunningNode) -> None:
    async with node.controller.client() as api:
        await api.apply(app(web=web(3)), source="app.yml")
        tasks = await wait_for(lambda: running(api, 3), "3 running replicas", timeout=60)
        before = runc_pids(node)
        assert len(before) == 3

        node.kill_agent()
        victim = tasks[0]["status"]["containerId"]
        os.kill(before[victim], signal.SIGKILL)
        node.start_agent()

        async def recovered() -> list[dict] | None:
            now = await running(api, 3)
            if now is None or now[0]["status"]["restarts"] < 1:
                return None
            return now
        after_tasks = await wait_for(recovered, "the killed replica to be restarted", 60)
        after = runc_pids(node)
        survivors = [t["status"]["containerId"] for t in tasks[1:]]
        assert all(after[c] == before[c] for c in survivors), (before, after)
        assert after[victim] != before[victim]
        assert [t["status"]["restarts"] for t in after_tasks] == [1, 0, 0]


async def test_removed_tasks_leave_nothing_behind(node: RunningNode) -> None:
    async with node.controller.client() as api:
        await api.apply(app(web=web(3, stop_grace_period="1s")), source="app.yml")
        await wait_for(lambda: running(api, 3), "3 running replicas", timeout=60)
        await api.apply(app(web=web(1, stop_grace_period="1s")), source="app.yml")
        await wait_for(lambda: _only(node, 1), "2 containers removed", timeout=60)
        await api.delete(APP, "hello")
        await wait_for(lambda: _only(node, 0), "every container removed", timeout=60)
        await wait_for(lambda: _no_tasks(api), "tasks deleted")
    state = node.settings.state_dir
    assert list((state / "containers").iterdir()) == []
    assert list((state / "network" / "ipam").glob("10.*")) == []
    netns = [p for p in os.listdir("/run/netns") if p.startswith(node.settings.netns_prefix)]
    assert netns == []
    from agent.runtime import cgroups
    assert [d for d in cgroups.existing_dirs("/" + node.settings.cgroup_parent)
            if d.name.startswith("sk")] == []
    veths, mounts, processes = _host_view(node)
    assert veths == [] and mounts == [] and processes == []


def _host_view(node: RunningNode) -> tuple[list[str], list[str], list[str]]:
    """Veths of the node's containers (on its bridge or its networks' bridges), mounts
    under its state, processes (shims) using it."""
    out = subprocess.run(["ip", "-br", "link", "show", "type", "veth"],
                         capture_output=True, text=True, check=True).stdout
    veths = [line.split()[0].split("@")[0] for line in out.splitlines() if line.strip()]
    veths = [v for v in veths if v.startswith(f"{node.settings.ifprefix}v")]
    state = str(node.settings.state_dir)
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if line.split()[4].startswith(state)]
    processes = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if state.encode() in cmdline and b" agent " not in cmdline.replace(b"\0", b" "):
                processes.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return veths, mounts, processes


async def _only(node: RunningNode, n: int) -> bool:
    pids = await asyncio.to_thread(runc_pids_now, node)
    return pids is not None and len(pids) == n and len(
        list((node.settings.state_dir / "containers").iterdir())) == n


async def _no_tasks(api: ApiClient) -> bool:
    return not await tasks_of(api)


async def test_bad_tasks_say_why_and_others_keep_running(node: RunningNode) -> None:
    broken = {
        "noimage": {"image": "nope:1", "restart": "no"},
        "nocmd": {"image": "busybox", "command": ["/no/such/thing"], "restart": "no"},
        "crash": {"image": "busybox", "command": ["sh", "-c", "echo about to fail; exit 4"],
                  "restart": "on-failure:2"},
    }
    async with node.controller.client() as api:
        await api.apply(app(web=web(1), **broken), source="app.yml")

        async def settled() -> dict | None:
            by = {t["spec"]["service"]: t["status"] for t in await tasks_of(api)}
            done = all(by.get(s, {}).get("state") == "failed" and
                       "restarting in" not in by[s].get("message", "") for s in broken)
            return by if done and by.get("web", {}).get("state") == "running" else None
        by = await wait_for(settled, "every broken task to settle", timeout=90)
    assert "image nope:1 is not on node" in by["noimage"]["message"]
    assert "/no/such/thing" in by["nocmd"]["message"]
    assert by["crash"]["exitCode"] == 4 and by["crash"]["restarts"] == 2
    assert "about to fail" in by["crash"]["message"]
    assert "gave up after 2 restarts" in by["crash"]["message"]
