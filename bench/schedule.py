"""Scheduling throughput: 200 hollow nodes and 10,000 replicas, next to a round-robin
baseline measured in the same run.

    .venv/bin/python -m bench.schedule [--nodes 200] [--services 10] [--replicas 1000]

Hollow nodes are agents that register, heartbeat and report their tasks running without
starting anything (like Kubernetes' kubemark): one process plays all of them over the
API. For each scheduler (the real one, then `--scheduler round-robin`, which binds to
ready nodes in turn with no rules), a fresh etcd and controller (node grace 60 s: the
hollow nodes share two cores with everything else) get the nodes and an
app of SERVICES x REPLICAS; the benchmark times until every task is bound (tasks
scheduled per second) and until every task reports running.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections import Counter
from datetime import UTC, datetime

from bench.common import local_cluster
from skiff.client.api import ApiClient
from skiff.models.codec import encode
from skiff.models.kinds import TASK
from skiff.models.objects import Node, NodeResources, NodeStatus, ObjectMeta

HEARTBEAT_SECONDS = 4.0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _status(i: int) -> NodeStatus:
    return NodeStatus(address=f"10.250.{i // 250}.{i % 250 + 1}", ready=True,
                      capacity=NodeResources(8.0, 32 * 2**30),
                      allocatable=NodeResources(8.0, 32 * 2**30), last_heartbeat=_now())


class HollowNodes:
    """Many nodes, no containers: tasks bound to them are reported running at once."""

    def __init__(self, api: ApiClient, count: int) -> None:
        self.api = api
        self.names = [f"hollow-{i:03d}" for i in range(count)]
        self.reported: set[str] = set()

    async def register(self) -> None:
        for i, name in enumerate(self.names):
            node = Node(metadata=ObjectMeta(name=name, labels={"zone": f"z{i % 3}"}),
                        status=_status(i))
            await self.api.register_node(encode(node))

    async def heartbeat(self) -> None:
        limit = asyncio.Semaphore(20)

        async def beat(i: int, name: str) -> None:
            async with limit:
                await self.api.put_node_status(name, encode(_status(i)))

        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            await asyncio.gather(*(beat(i, n) for i, n in enumerate(self.names)),
                                 return_exceptions=True)

    async def run_tasks(self, app: str) -> None:
        mine = set(self.names)
        limit = asyncio.Semaphore(16)

        async def report(task: dict) -> None:
            async with limit:
                status = {**task["status"], "state": "running", "message": "",
                          "containerId": "hollow", "startedAt": _now()}
                await self.api.put_task_status(app, task["metadata"]["name"], status)

        pending: set[asyncio.Task[None]] = set()
        async for event in self.api.watch(TASK, app=app):
            task = event["object"]
            name = task["metadata"]["name"]
            if (event["type"] != "DELETED" and task["spec"].get("nodeName") in mine
                    and task["status"].get("state") == "assigned"
                    and name not in self.reported):
                self.reported.add(name)
                job = asyncio.create_task(report(task))
                pending.add(job)
                job.add_done_callback(pending.discard)


async def _run(url: str, token: str, nodes: int, services: int, replicas: int
               ) -> tuple[float, float, Counter[str]]:
    total = services * replicas
    async with ApiClient(url, token, timeout=300) as api:
        hollow = HollowNodes(api, nodes)
        await hollow.register()
        beat = asyncio.create_task(hollow.heartbeat())
        runner = asyncio.create_task(hollow.run_tasks("big"))
        manifest = {"name": "big", "services": {
            f"s{i:02d}": {"image": "busybox", "command": ["sleep", "1d"],
                          "deploy": {"replicas": replicas}} for i in range(services)}}
        start = time.perf_counter()
        await api.apply(manifest, source="bench")
        bound_at = running_at = 0.0
        spread: Counter[str] = Counter()
        while not running_at:
            await asyncio.sleep(2.0)  # each look is a list of 10,000 tasks: not too often
            items = (await api.list(TASK, app="big"))["items"]
            live = [t for t in items if t["spec"]["desiredState"] == "running"]
            if not bound_at and len(live) == total and all(
                    t["spec"].get("nodeName") for t in live):
                bound_at = time.perf_counter() - start
                spread = Counter(t["spec"]["nodeName"] for t in live)
            if bound_at and all(t["status"]["state"] == "running" for t in live):
                running_at = time.perf_counter() - start
            print(f"  {time.perf_counter() - start:6.1f}s: {len(live)} tasks, "
                  f"{sum(1 for t in live if t['spec'].get('nodeName'))} bound, "
                  f"{sum(1 for t in live if t['status']['state'] == 'running')} running",
                  flush=True)
        beat.cancel()
        runner.cancel()
        await asyncio.gather(beat, runner, return_exceptions=True)
    return bound_at, running_at, spread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--replicas", type=int, default=1000)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    total = args.services * args.replicas
    results = {}
    for scheduler in ("default", "round-robin"):
        print(f"scheduler {scheduler}:", flush=True)
        # One machine plays the cluster and all its nodes: give heartbeats slack, so an
        # overloaded moment does not read as two hundred nodes dying.
        with local_cluster("--scheduler", scheduler, "--node-grace", "60") as cluster:
            results[scheduler] = asyncio.run(_run(cluster.url, cluster.token, args.nodes,
                                                  args.services, args.replicas))
    print(f"\n{total} replicas on {args.nodes} hollow nodes")
    print(f"{'scheduler':<12} {'all bound':>10} {'tasks/s':>9} {'all running':>12} "
          f"{'per node':>10}")
    for name, (bound, running, spread) in results.items():
        print(f"{name:<12} {bound:9.1f}s {total / bound:9.0f} {running:11.1f}s "
              f"{min(spread.values())}-{max(spread.values()):<6}")
    base_bound, base_running, _ = results["round-robin"]
    bound, running, _ = results["default"]
    print(f"ratio default/round-robin: bound {bound / base_bound:.2f}x, "
          f"running {running / base_running:.2f}x")


if __name__ == "__main__":
    main()
