"""`bench.net --lab`: the routing mesh across nodes of a real 3-node `skiff lab`.

`skiff lab up --nodes 3` under a unique name, subnet and ports, its state and CLI config
in a temp dir; `skiff lab down --purge` at the end whatever happened (then anything of the
lab still there is named and killed, as tests/e2e/conftest.py does). One busybox replica,
placed on node 2, runs both servers: an echo-like `nc -ll -p 80 -e tr x y` (a fork and
exec of busybox per connection) and a sink, `dd bs=1M iflag=fullblock` behind `nc -ll -p
9000`, which answers "N+0 records in" at EOF (busybox `wc -c` reads at ~200 MB/s, too
slow to measure a network with). Ports 8080:80 and 9000:9000 are published. The client
runs in node 1's network namespace (run_in_netns: a process on the node itself) and
reaches the replica two ways:
  mesh    node 1's lab address:8080 / :9000, DNAT by node 1's mesh (nat output chain) to
          the replica, masqueraded to node 1's bridge address, then VXLAN to node 2
  direct  the replica's overlay address (Task.status.networks) :80 / :9000, over VXLAN
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from agent.network.netns import run_in_netns
from bench.net import Results, Target, connects, measure
from controller.store.etcd_server import free_port
from tests.e2e.conftest import Lab, _kill_everything, _unused_subnet, leftovers, wait_for

TITLE = "across nodes (lab): node 1's published port vs the replica on node 2"
APP = "netbench"
ECHO, SINK = 80, 9000
PUBLISHED_ECHO, PUBLISHED_SINK = 8080, 9000
SERVERS = (f"nc -ll -p {SINK} -e sh -c 'dd bs=1M iflag=fullblock of=/dev/null 2>&1' & "
           f"exec nc -ll -p {ECHO} -e tr x y")


@contextlib.contextmanager
def lab_up(nodes: int = 3) -> Iterator[Lab]:
    """A lab of `nodes` nodes of its own; nothing of it is left afterwards."""
    base = Path(tempfile.mkdtemp(prefix="skiff-bench-net-"))
    lab = Lab(f"bn{secrets.token_hex(3)}", nodes, _unused_subnet(), base / "state",
              base / "config")
    down = ("lab", "down", "--name", lab.name, "--state-dir", str(lab.state_dir), "--purge")
    try:
        print(f"lab {lab.name} on {lab.subnet}: starting {nodes} nodes", flush=True)
        lab.skiff("lab", "up", "--nodes", str(nodes), "--name", lab.name, "--state-dir",
                  str(lab.state_dir), "--subnet", str(lab.subnet), "--port",
                  str(free_port()), "--registry-port", str(free_port()), timeout=240)
        yield lab
    finally:
        lab.skiff(*down, timeout=120, check=False)
        left = leftovers(lab.name, lab.state_dir, nodes)
        if left:
            print(f"lab down left {left}; down again, then killing what is left",
                  file=sys.stderr)
            lab.skiff(*down, timeout=120, check=False)
            _kill_everything(lab.state_dir)
        shutil.rmtree(base, ignore_errors=True)


def manifest(lab: Lab) -> str:
    return f"""\
name: {APP}
services:
  sink:
    image: busybox
    command: {json.dumps(["sh", "-c", SERVERS])}
    stop_signal: SIGKILL
    ports: ["{PUBLISHED_ECHO}:{ECHO}", "{PUBLISHED_SINK}:{SINK}"]
    deploy:
      replicas: 1
      placement:
        constraints: ["node.name=={lab.node(2)}"]
"""


def _replica(lab: Lab) -> dict[str, Any] | None:
    tasks = [t for t in lab.tasks(APP) if t["spec"]["desiredState"] == "running"]
    return tasks[0] if len(tasks) == 1 and tasks[0]["status"]["state"] == "running" else None


def _answers(target: Target) -> bool:
    try:
        connects(target.host, target.echo, 1)
    except (OSError, RuntimeError):
        return False
    return True


def run_lab(mbytes: int, rounds: int, count: int) -> Results:
    start = time.monotonic()
    with lab_up() as lab:
        lab.apply(manifest(lab))
        task = wait_for(lambda: _replica(lab), "the replica running", timeout=180)
        if task["spec"]["nodeName"] != lab.node(2):
            raise RuntimeError(f"the replica runs on {task['spec']['nodeName']}, not node 2")
        replica = next(iter(task["status"]["networks"].values()))
        targets = {"direct": Target(replica, ECHO, SINK),
                   "mesh": Target(lab.node_address(1), PUBLISHED_ECHO, PUBLISHED_SINK)}
        in_node1 = partial(run_in_netns, Path("/run/netns") / lab.node(1))
        for name, target in targets.items():
            wait_for(lambda t=target: in_node1(_answers, t), f"{name} path to answer", 60)
        print(f"lab up, replica on {lab.node(2)} at {targets['direct'].host} after "
              f"{time.monotonic() - start:.0f} s; measuring from {lab.node(1)}", flush=True)
        return measure(in_node1, targets, mbytes, rounds, count,
                       answer=f"{mbytes}+0 records in".encode())
