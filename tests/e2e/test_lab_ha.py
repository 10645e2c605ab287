"""`skiff lab up --ha`: 3 etcd members and 2 controllers. With one controller and one etcd
member killed, the CLI and the agents fail over, and the survivor schedules new work."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Lab, running_lab, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

APP = """\
name: survivor
services:
  sleeper:
    image: busybox
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    deploy:
      replicas: 2
"""


@pytest.fixture(scope="module")
def ha_lab() -> Iterator[Lab]:
    with running_lab(1, ha=True) as lab:
        yield lab


def test_ha_lab_survives_a_controller_and_an_etcd_member(ha_lab: Lab) -> None:
    controllers, members = ha_lab.pids("controller"), ha_lab.pids("etcd")
    assert sorted(controllers) == ["c0", "c1"] and sorted(members) == ["m0", "m1", "m2"]
    assert "," in ha_lab.config.read_text()  # the CLI knows both controllers

    os.kill(controllers["c0"], signal.SIGKILL)
    os.kill(members["m2"], signal.SIGKILL)
    nodes = ha_lab.skiff("get", "nodes").stdout  # through c1
    assert ha_lab.node(1) in nodes and "Ready" in nodes

    ha_lab.apply(APP)

    def running() -> bool:
        tasks = ha_lab.tasks("survivor")
        return len(tasks) == 2 and all(t["status"]["state"] == "running" for t in tasks)

    # If c0 led, c1 takes over once c0's leader lease runs out (10 s).
    wait_for(running, "2 replicas scheduled and running by the surviving controller",
             timeout=90)


def _leader(lab: Lab) -> str:
    """The controller (c0, c1) whose log says it leads now: the last to say so."""
    latest = ("", "")
    for k in ("c0", "c1"):
        log = lab.state_dir / "logs" / f"controller-{k}.log"
        for line in log.read_text(errors="replace").splitlines():
            if "is the leader" in line:
                latest = max(latest, (line[:23], k))
    return latest[1]


def test_killing_the_leader_during_a_scale_up_makes_no_duplicates() -> None:
    with running_lab(1, ha=True) as lab:
        lab.apply(APP.replace("name: survivor", "name: scale"))
        wait_for(lambda: len([t for t in lab.tasks("scale")
                              if t["status"]["state"] == "running"]) == 2,
                 "2 running replicas", timeout=90)
        leader = wait_for(lambda: _leader(lab), "a leader")
        lab.apply(APP.replace("name: survivor", "name: scale")
                  .replace("replicas: 2", "replicas: 8"))
        os.kill(lab.pids("controller")[leader], signal.SIGKILL)

        def settled() -> list[dict] | None:
            live = [t for t in lab.tasks("scale") if t["spec"]["desiredState"] == "running"]
            ok = len(live) == 8 and all(t["status"]["state"] == "running" for t in live)
            return live if ok else None
        live = wait_for(settled, "8 running replicas after the leader died", timeout=120)
        assert sorted(t["spec"]["slot"] for t in live) == list(range(1, 9))
        # The other controller takes over once the dead one's lease runs out (10 s).
        wait_for(lambda: _leader(lab) not in ("", leader), "the other controller to lead",
                 timeout=40)
        after = [t for t in lab.tasks("scale") if t["spec"]["desiredState"] == "running"]
        assert len(after) == 8  # and its first reconcile made no duplicates
