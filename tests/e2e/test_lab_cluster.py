"""A 3-node lab cluster: replicas spread over nodes, exec reaches a container on node 3,
containers get out through their node, and a node can be cut off and brought back."""

from __future__ import annotations

import socket
from collections import Counter
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest

from tests.e2e.conftest import Lab, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

SPREAD = """\
name: spread
services:
  sleeper:
    image: busybox
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    deploy:
      replicas: 6
"""


@pytest.fixture(scope="module")
def spread(lab: Lab) -> list[dict[str, Any]]:
    lab.apply(SPREAD)

    def six_running() -> list[dict[str, Any]] | None:
        tasks = [t for t in lab.tasks("spread") if t["spec"]["desiredState"] == "running"]
        running = [t for t in tasks if t["status"]["state"] == "running"]
        return running if len(running) == 6 else None

    return wait_for(six_running, "6 running replicas", timeout=120)


def _on(lab: Lab, tasks: list[dict[str, Any]], i: int) -> list[dict[str, Any]]:
    return [t for t in tasks if t["spec"]["nodeName"] == lab.node(i)]


def _slice(lab: Lab, i: int) -> IPv4Network:
    """Node i's part of the app's default network: where its containers get addresses."""
    network = lab.api_get("/api/v1/networks/spread_default")
    return IPv4Network(network["status"]["nodes"][lab.node(i)]["subnet"])


def test_replicas_spread_two_per_node(lab: Lab, spread: list[dict[str, Any]]) -> None:
    per_node = Counter(t["spec"]["nodeName"] for t in spread)
    assert per_node == {lab.node(i): 2 for i in (1, 2, 3)}, per_node
    for i in (1, 2, 3):
        for task in _on(lab, spread, i):
            assert IPv4Address(task["status"]["ip"]) in _slice(lab, i), task["status"]
            assert task["status"]["networks"] == {"spread_default": task["status"]["ip"]}


def test_exec_on_node3_and_outbound_through_node1(lab: Lab,
                                                  spread: list[dict[str, Any]]) -> None:
    task = _on(lab, spread, 3)[0]
    out = lab.skiff("exec", f"spread/{task['metadata']['name']}", "--", "ip", "-4", "-o",
                    "addr", "show", "eth0").stdout
    address = IPv4Address(out.split("inet ")[1].split("/")[0])
    assert address in _slice(lab, 3)
    assert str(address) == task["status"]["ip"]

    task = _on(lab, spread, 1)[0]
    ping = lab.skiff("exec", f"spread/{task['metadata']['name']}", "--", "ping", "-c", "1",
                     "-W", "5", lab.gateway, check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "1 packets received" in ping.stdout


def _agent_answers(lab: Lab, i: int) -> bool:
    try:
        with socket.create_connection((lab.node_address(i), 7481), timeout=1):
            return True
    except OSError:
        return False


def test_node_kill_agent_and_cut(lab: Lab, spread: list[dict[str, Any]]) -> None:
    before = {t["metadata"]["name"]: t["status"]["containerId"] for t in _on(lab, spread, 2)}
    assert "killed" in lab.lab("node", "stop", "2").stdout
    assert _status_row(lab, 2)[3] == "stopped"
    wait_for(lambda: not _agent_answers(lab, 2), "node 2's agent to be gone", timeout=10)
    assert "Ready" in lab.lab("node", "start", "2").stdout
    # The restarted agent adopted its containers: same ones, still running, no restarts.
    after = {t["metadata"]["name"]: t for t in _on(lab, lab.tasks("spread"), 2)}
    assert {n: t["status"]["containerId"] for n, t in after.items()} == before
    assert all(t["status"]["state"] == "running" and t["status"]["restarts"] == 0
               for t in after.values()), after

    lab.lab("node", "stop", "3", "--mode", "cut")
    assert not _agent_answers(lab, 3)
    assert _status_row(lab, 3)[5] == "down"
    lab.lab("node", "start", "3")
    # The node never went NotReady in so short a cut, so `start` does not wait for a
    # heartbeat through the link it brought up; the first connection may need ARP again.
    wait_for(lambda: _agent_answers(lab, 3), "node 3's agent to answer again", timeout=10)
    assert _status_row(lab, 3)[5] == "up"


def _status_row(lab: Lab, i: int) -> list[str]:
    """ROLE NAME PID STATE ADDRESS LINK NODE of node i's agent in `skiff lab status`."""
    rows = [line.split() for line in lab.lab("status").stdout.splitlines()]
    return next(r for r in rows if r[:2] == ["agent", lab.node(i)])
