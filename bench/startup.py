"""Time from `apply` to running, for 1 and for 20 replicas on one node, next to a bare
`runc run -d` of the same kind of bundle measured in the same run.

    .venv/bin/python -m bench.startup [--rounds-1 10] [--rounds-20 3] [--bare 20]

Each round applies an app (a fresh spec, so every replica is new), follows the tasks
through the API's watch stream and notes when each one is first reported running;
then deletes the app and waits until all is gone. Every replica is one sample. The
baseline starts the busybox image's unpacked layer (read-only) with runc directly: no
API, no scheduling, no overlay, no network namespace, no shim.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent.images.store import ImageStore
from agent.images.unpack import lower_dirs
from agent.runtime.host import gather
from agent.runtime.request import ContainerRequest
from agent.runtime.spec import oci_config
from agent.runtime.users import ResolvedUser
from bench.common import local_cluster, local_node, ms, percentile
from skiff.client.api import ApiClient
from skiff.models.kinds import APP, TASK

LOOP = ["sh", "-c", "while true; do sleep 1; done"]


async def _round(api: ApiClient, replicas: int, rev: int) -> list[float]:
    manifest = {"name": "startup", "services": {"web": {
        "image": "busybox", "command": LOOP, "environment": {"REV": str(rev)},
        "stop_grace_period": "0s", "deploy": {"replicas": replicas}}}}
    revision = (await api.list(TASK, app="startup"))["metadata"]["resourceVersion"]
    started: dict[str, float] = {}
    begin = time.perf_counter()
    await api.apply(manifest, source="bench")

    async def follow() -> None:
        async for event in api.watch(TASK, resource_version=revision, app="startup"):
            task = event["object"]
            if task["status"].get("state") == "running":
                started.setdefault(task["metadata"]["name"], time.perf_counter())
                if len(started) == replicas:
                    return

    await asyncio.wait_for(follow(), 120)
    samples = [t - begin for t in started.values()]
    await api.delete(APP, "startup")
    deadline = time.monotonic() + 120
    while (await api.list(TASK, app="startup"))["items"]:
        if time.monotonic() > deadline:
            raise RuntimeError("tasks were not removed within 120 s")
        await asyncio.sleep(0.2)
    return samples


async def _measure(url: str, token: str, rounds: dict[int, int]) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    async with ApiClient(url, token, timeout=120) as api:
        rev = 0
        for replicas, count in rounds.items():
            out[replicas] = []
            for _ in range(count):
                rev += 1
                out[replicas] += await _round(api, replicas, rev)
                print(f"  {replicas} replicas: round {rev} done", flush=True)
    return out


def _bare_runc(images: Path, work: Path, count: int) -> list[float]:
    """`runc run -d` of a busybox bundle, from the call until runc returns (started)."""
    async def rootfs() -> Path:
        store = ImageStore(images)
        image = await store.resolve("busybox")
        assert image is not None
        return (await lower_dirs(store, image))[0]

    root = asyncio.run(rootfs())
    runc_root = work / "runc"
    samples = []
    for i in range(count):
        bundle = work / f"bundle{i}"
        bundle.mkdir(parents=True)
        cid = f"skiff-bench-bare-{i}"
        req = ContainerRequest(id=cid, bundle_dir=bundle, rootfs=root, args=LOOP,
                               read_only=True, cgroup_parent="skiff-bench-bare")
        config = oci_config(req, ResolvedUser(), gather())
        (bundle / "config.json").write_text(json.dumps(config))
        # The container inherits runc's stdio: a pipe would never close, so a file.
        with open(work / "runc.out", "ab") as out:
            start = time.perf_counter()
            subprocess.run(["runc", "--root", str(runc_root), "run", "-d", "--bundle",
                            str(bundle), cid], check=True, stdin=subprocess.DEVNULL,
                           stdout=out, stderr=out)
            samples.append(time.perf_counter() - start)
        subprocess.run(["runc", "--root", str(runc_root), "delete", "--force", cid],
                       check=False, capture_output=True)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds-1", type=int, default=10)
    parser.add_argument("--rounds-20", type=int, default=3)
    parser.add_argument("--bare", type=int, default=20)
    args = parser.parse_args()
    # Ctrl-C or SIGTERM still runs every clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    with tempfile.TemporaryDirectory(prefix="skiff-bench-") as tmp, local_cluster() as cluster:
        base = Path(tmp)
        with local_node(cluster, base) as node:
            results = asyncio.run(_measure(cluster.url, cluster.token,
                                           {1: args.rounds_1, 20: args.rounds_20}))
            try:
                bare = _bare_runc(node.images, base / "bare", args.bare)
            finally:
                with contextlib.suppress(OSError):
                    from agent.runtime import cgroups
                    cgroups.remove("/skiff-bench-bare")
                shutil.rmtree(base / "bare", ignore_errors=True)
    b50, b99 = statistics.median(bare), percentile(bare, 99)
    print(f"\napply to running vs bare `runc run -d` (baseline p50 {ms(b50)}, "
          f"p99 {ms(b99)}, {len(bare)} runs)")
    print(f"{'replicas':<10} {'samples':>8} {'p50':>11} {'p99':>11} {'ratio p50':>10} "
          f"{'ratio p99':>10}")
    for replicas, samples in results.items():
        p50, p99 = statistics.median(samples), percentile(samples, 99)
        print(f"{replicas:<10} {len(samples):>8} {ms(p50)} {ms(p99)} {p50 / b50:9.1f}x "
              f"{p99 / b99:9.1f}x")


if __name__ == "__main__":
    main()
