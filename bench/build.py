"""Rebuilds against a cold build of the same Dockerfile, in the same run: a no-change
rebuild and a one-file-edit rebuild of manifests/getting-started, with the real builder
(runc for RUN, overlayfs, the layer cache), as an agent runs it.

    .venv/bin/python -m bench.build          # --rounds 5

Every round: a cold build (`no_cache`: every step runs, as on a fresh node), then the
same context again (no change: every step CACHED), then with one source file edited
(the source COPY and the CMD after it run, the rest CACHED). Each is timed from the
packed context to the image in the store; packing the context is timed apart, as the
CLI does it before the upload. Prints medians and each rebuild's ratio to the cold build.
Needs root (overlay mounts, runc).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from agent.build import BuildResult, build
from agent.images.busybox import build_busybox_image
from agent.images.store import ImageStore
from agent.runtime import cgroups
from agent.runtime.runc import Runc
from skiff.build.context import pack_context
from skiff.build.ignore import load_ignore

APP = Path(__file__).resolve().parents[1] / "manifests" / "getting-started"
EDITED = Path("src") / "www" / "index.html"


class Bench:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.store = ImageStore(base / "store")
        self.context = base / "getting-started"
        self.runc_root = base / "runc"
        self.cgroup_parent = f"skiff-bench-build-{secrets.token_hex(4)}"
        self.dockerfile = (APP / "Dockerfile").read_text()
        self.pack_seconds: list[float] = []

    def pack(self) -> Path:
        start = time.perf_counter()
        out = io.BytesIO()
        pack_context(self.context, out, load_ignore(self.context))
        tar = self.base / "context.tar"
        tar.write_bytes(out.getvalue())
        self.pack_seconds.append(time.perf_counter() - start)
        return tar

    async def build(self, *, no_cache: bool) -> tuple[float, BuildResult]:
        tar = await asyncio.to_thread(self.pack)
        start = time.perf_counter()
        result = await build(self.store, None, tar, self.dockerfile, tag="bench:1",
                             no_cache=no_cache, work_dir=self.base / "work",
                             progress=lambda _event: None, runc_root=self.runc_root,
                             cgroup_parent=self.cgroup_parent)
        return time.perf_counter() - start, result

    def edit(self, n: int) -> None:
        path = self.context / EDITED
        path.write_text(path.read_text() + f"<!-- edit {n} -->\n")

    async def cleanup(self) -> None:
        if self.runc_root.exists():
            runc = Runc(self.runc_root)
            for state in await runc.list():
                with contextlib.suppress(Exception):
                    await runc.delete(state.id, force=True)
        await asyncio.to_thread(_unmount_under, self.base)
        await asyncio.to_thread(cgroups.remove, f"/{self.cgroup_parent}")


def _unmount_under(base: Path) -> None:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        if point == str(base) or point.startswith(f"{base}/"):
            points.append(point)
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _reran(result: BuildResult) -> list[str]:
    return [s.instruction for s in result.steps if not s.cached]


async def run(rounds: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="skiff-bench-build-"))
    bench = Bench(base)
    try:
        shutil.copytree(APP, bench.context, symlinks=True)
        await build_busybox_image(bench.store)
        await bench.build(no_cache=False)  # warm-up: page cache, the busybox layer unpacked
        cold, same, edit = [], [], []
        for n in range(rounds):
            seconds, result = await bench.build(no_cache=True)
            cold.append(seconds)
            seconds, result = await bench.build(no_cache=False)
            assert not _reran(result), f"no-change rebuild re-ran {_reran(result)}"
            same.append(seconds)
            bench.edit(n)
            seconds, result = await bench.build(no_cache=False)
            assert _reran(result)[0] == "COPY src/ ./", _reran(result)
            edit.append(seconds)
        steps = len(result.steps)
        print(f"manifests/getting-started: {steps} steps, {rounds} rounds, medians "
              f"(context packed in {statistics.median(bench.pack_seconds) * 1000:.1f} ms)")
        c = statistics.median(cold)
        print(f"  cold build (no cache)      {c * 1000:8.1f} ms   1.00")
        for label, samples in (("no-change rebuild", same), ("one-file-edit rebuild", edit)):
            m = statistics.median(samples)
            print(f"  {label:<26} {m * 1000:8.1f} ms   {m / c:.2f} of cold "
                  f"({c / m:.1f}x faster)")
    finally:
        try:
            await bench.cleanup()
        finally:
            shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.rounds))


if __name__ == "__main__":
    main()
