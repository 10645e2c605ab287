"""API latency with 10,000 tasks stored, next to raw etcd in the same run.

    .venv/bin/python -m bench.api [--services 10] [--replicas 1000] [--samples 500]

Seeds the store the way users do: applies an app of SERVICES x REPLICAS and waits for
the reconcilers to create every task. Then it times, one request at a time over a
keep-alive connection: GET one task, LIST all tasks, and apply (unchanged, and changed),
each next to the etcd operation it rests on (get one key, range the task prefix, a
compare-and-swap put of the app's value). Prints p50 and p99 and the ratio API/etcd.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import Awaitable, Callable

from bench.common import local_cluster, ms, percentile
from controller.store.etcd import EtcdKV
from controller.store.kv import Compare, Put
from skiff.client.api import ApiClient
from skiff.models.kinds import APP, TASK


def manifest(name: str, services: int, replicas: int, env: str = "a") -> dict:
    return {"name": name, "services": {
        f"s{i:02d}": {"image": "busybox", "command": ["sleep", "3600"],
                      "environment": {"REV": env}, "deploy": {"replicas": replicas}}
        for i in range(services)}}


async def timed(n: int, op: Callable[[], Awaitable[object]]) -> list[float]:
    await op()  # warm up connections and caches
    out = []
    for _ in range(n):
        start = time.perf_counter()
        await op()
        out.append(time.perf_counter() - start)
    return out


async def wait_for_tasks(api: ApiClient, total: int) -> None:
    start = time.monotonic()
    last = -1
    while True:
        tasks = (await api.list(TASK))["items"]
        settled = sum(1 for t in tasks if t["status"]["message"].startswith("0/"))
        if len(tasks) == total and settled == total:
            break
        if len(tasks) != last:
            print(f"  seeding: {len(tasks)}/{total} tasks "
                  f"({time.monotonic() - start:.0f}s)", flush=True)
            last = len(tasks)
        await asyncio.sleep(2)
    print(f"  seeded {total} tasks in {time.monotonic() - start:.1f}s", flush=True)


async def run(services: int, replicas: int, samples: int) -> None:
    total = services * replicas
    with local_cluster() as cluster:
        kv = EtcdKV(cluster.etcd.host, cluster.etcd.port)
        async with ApiClient(cluster.url, cluster.token, timeout=120) as api:
            await api.apply(manifest("big", services, replicas), source="bench")
            await wait_for_tasks(api, total)
            some = (await api.list(TASK, app="big"))["items"][total // 2]
            name = some["metadata"]["name"]
            key = f"/skiff/tasks/big/{name}"

            rows = []
            rows.append(("get task", await timed(samples, lambda: api.get(TASK, name, "big")),
                         await timed(samples, lambda: kv.get(key))))
            n_list = max(5, samples // 50)
            rows.append((f"list {total} tasks", await timed(n_list, lambda: api.list(TASK)),
                         await timed(n_list, lambda: kv.range("/skiff/tasks/"))))

            small = manifest("small", 2, 0)
            await api.apply(small, source="bench")
            rows.append(("apply unchanged",
                         await timed(samples, lambda: api.apply(small, source="bench")),
                         await _cas_puts(kv, samples)))
            flip = iter(range(10**9))

            async def apply_changed() -> None:
                await api.apply(manifest("small", 2, 0, env=str(next(flip))), source="bench")

            rows.append(("apply changed", await timed(samples, apply_changed),
                         await _cas_puts(kv, samples)))
            app = await api.get(APP, "small")
        await kv.close()

    print(f"\nskiff API vs etcd, {total} tasks stored, app value {len(str(app))} bytes")
    print(f"{'operation':<20} {'API p50':>11} {'API p99':>11} {'etcd p50':>11} "
          f"{'etcd p99':>11} {'ratio p50':>10} {'ratio p99':>10}")
    for label, api_s, etcd_s in rows:
        a50, a99 = percentile(api_s, 50), percentile(api_s, 99)
        e50, e99 = percentile(etcd_s, 50), percentile(etcd_s, 99)
        print(f"{label:<20} {ms(a50)} {ms(a99)} {ms(e50)} {ms(e99)} "
              f"{a50 / e50:9.1f}x {a99 / e99:9.1f}x")


async def _cas_puts(kv: EtcdKV, n: int) -> list[float]:
    """The etcd floor under an apply: read the key, then compare-and-swap a put."""
    value = b"x" * 2048
    await kv.txn([], [Put("/bench/app", value)])

    async def op() -> None:
        current = await kv.get("/bench/app")
        assert current is not None
        await kv.txn([Compare("/bench/app", current.mod_revision)], [Put("/bench/app", value)])

    return await timed(n, op)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--replicas", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=500)
    args = parser.parse_args()
    # SIGTERM still runs the clean-up of the cluster this started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    asyncio.run(run(args.services, args.replicas, args.samples))


if __name__ == "__main__":
    main()
