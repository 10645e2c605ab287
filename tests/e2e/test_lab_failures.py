"""Node loss and drain on the 3-node lab: replicas move, stale ones stop, and a drain
never leaves a service without a running replica."""

from __future__ import annotations

import json
import subprocess
import threading
from collections import Counter
from typing import Any

import pytest

from tests.e2e.conftest import Lab, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(400)]


def manifest(name: str, replicas: int) -> str:
    return f"""\
name: {name}
services:
  sleeper:
    image: busybox
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    stop_grace_period: 1s
    deploy:
      replicas: {replicas}
"""


def live(lab: Lab, app: str) -> list[dict[str, Any]]:
    return [t for t in lab.tasks(app) if t["spec"]["desiredState"] == "running"]


def running(lab: Lab, app: str) -> list[dict[str, Any]]:
    return [t for t in live(lab, app) if t["status"]["state"] == "running"]


def runc_ids(lab: Lab, i: int) -> set[str]:
    root = lab.state_dir / "nodes" / f"n{i}" / "runc"
    for _ in range(50):
        # `runc list` fails while a container's state directory is half made or removed.
        proc = subprocess.run(["runc", "--root", str(root), "list", "--format", "json"],
                              capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            return {c["id"] for c in json.loads(proc.stdout or "null") or []
                    if c["status"] == "running"}
    raise AssertionError(f"runc list on node {i} kept failing: {proc.stderr}")


def node_status(lab: Lab, i: int) -> str:
    rows = [line.split() for line in lab.skiff("node", "ls").stdout.splitlines()[1:]]
    return next(r[1] for r in rows if r[0] == lab.node(i))


def test_a_lost_node_s_replicas_move_and_its_stale_ones_stop(lab: Lab) -> None:
    lab.apply(manifest("loss", 6))
    first = wait_for(lambda: (r := running(lab, "loss")) and len(r) == 6 and r,
                     "6 running replicas", timeout=120)
    assert Counter(t["spec"]["nodeName"] for t in first) == {lab.node(i): 2 for i in (1, 2, 3)}
    stale = {t["status"]["containerId"] for t in first if t["spec"]["nodeName"] == lab.node(2)}
    stale_full = {c for c in runc_ids(lab, 2) if any(c.startswith(s) for s in stale)}
    assert len(stale_full) == 2

    lab.lab("node", "stop", "2")  # kill -9 its agent; its containers keep running

    def moved() -> list[dict[str, Any]] | None:
        now = running(lab, "loss")
        ok = len(now) == 6 and all(t["spec"]["nodeName"] != lab.node(2) for t in now)
        return now if ok else None
    after = wait_for(moved, "the replicas to run on nodes 1 and 3", timeout=90)
    assert {t["spec"]["nodeName"] for t in after} <= {lab.node(1), lab.node(3)}
    assert node_status(lab, 2) == "Down"
    assert stale_full <= runc_ids(lab, 2)  # still running behind the dead agent

    lab.lab("node", "start", "2")
    wait_for(lambda: node_status(lab, 2) == "Ready", "node 2 Ready again", timeout=60)
    wait_for(lambda: not (stale_full & runc_ids(lab, 2)), "node 2's stale containers to stop",
             timeout=60)
    final = running(lab, "loss")
    assert len(final) == 6 and len(live(lab, "loss")) == 6
    lab.skiff("delete", "app", "loss")


def test_drain_never_leaves_the_service_without_a_running_replica(lab: Lab) -> None:
    lab.apply(manifest("drainme", 2))
    tasks = wait_for(lambda: (r := running(lab, "drainme")) and len(r) == 2 and r,
                     "2 running replicas", timeout=120)
    victim = tasks[0]["spec"]["nodeName"]
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            # Straight to the API, not through the CLI: a sample every few milliseconds
            # instead of every half second, so a quick drain is still watched closely.
            tasks = lab.api_get("/api/v1/tasks", app="drainme")["items"]
            samples.append(sum(t["spec"]["desiredState"] == "running"
                               and t["status"]["state"] == "running" for t in tasks))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        lab.skiff("node", "drain", victim)

        def moved_off() -> bool:
            now = running(lab, "drainme")
            return len(now) == 2 and all(t["spec"]["nodeName"] != victim for t in now) \
                and len(live(lab, "drainme")) == 2
        wait_for(moved_off, f"both replicas off {victim}", timeout=120)
    finally:
        stop.set()
        sampler.join()
        lab.skiff("node", "activate", victim)
    assert len(samples) > 5, samples
    assert min(samples) >= 1, samples  # never zero running while draining
    lab.skiff("delete", "app", "drainme")
