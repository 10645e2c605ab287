"""Fixtures for builder tests with real runc and overlayfs: a temp image store with the
busybox image, a private runc root and cgroup parent, a context dir and a `build` helper.
Everything is removed afterwards, even when a test fails half-way: overlay mounts under
the temp dir, runc containers in the private root, the cgroup parent, the temp dir."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent.build import BuildEvent, BuildResult, build
from agent.images.busybox import build_busybox_image
from agent.images.models import Image
from agent.images.store import ImageStore
from agent.runtime import cgroups
from agent.runtime.runc import Runc
from skiff.build.context import pack_context

BUSYBOX = Path("/bin/busybox")


def _requirements() -> str | None:
    if os.geteuid() != 0:
        return "builder tests need root (overlay mounts, runc)"
    if shutil.which("runc") is None:
        return "runc is not installed"
    if not BUSYBOX.exists():
        return "busybox-static is not installed"
    return None


def mounts_under(base: Path) -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point == str(base) or point.startswith(str(base) + "/"):
            points.append(point)
    return points


@dataclass
class BuildEnv:
    base: Path
    store: ImageStore
    busybox: Image
    runc_root: Path
    cgroup_parent: str
    context: Path
    events: list[BuildEvent] = field(default_factory=list)

    @property
    def work_dir(self) -> Path:
        return self.base / "work"

    def write(self, files: dict[str, str | bytes]) -> None:
        """Files into the context dir (parents made)."""
        for name, content in files.items():
            path = self.context / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                content = content.encode()
            path.write_bytes(content)

    async def build(self, dockerfile: str, **kw: Any) -> BuildResult:
        out = io.BytesIO()
        pack_context(self.context, out)
        tar = self.base / f"context-{secrets.token_hex(4)}.tar"
        tar.write_bytes(out.getvalue())
        self.events.clear()
        kw.setdefault("tag", None)
        try:
            return await build(self.store, None, tar, dockerfile, work_dir=self.work_dir,
                               progress=self.events.append, runc_root=self.runc_root,
                               cgroup_parent=self.cgroup_parent, **kw)
        finally:
            tar.unlink()

    def output(self) -> list[str]:
        return [e.text for e in self.events if e.kind == "output"]

    def cached(self, result: BuildResult) -> list[str]:
        """The instructions (as written) of the steps that were cache hits."""
        return [s.instruction for s in result.steps if s.cached]

    async def runc_containers(self) -> list[str]:
        if not self.runc_root.exists():
            return []
        return [s.id for s in await Runc(self.runc_root).list()]


def _unmount_all(base: Path) -> None:
    for point in sorted(mounts_under(base), key=len, reverse=True):
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True)


@pytest.fixture
async def env() -> AsyncIterator[BuildEnv]:
    reason = _requirements()
    if reason:
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="skiff-build-"))
    parent = f"buildtest-{secrets.token_hex(4)}"
    runc_root = base / "runc"
    try:
        store = ImageStore(base / "store")
        busybox = await build_busybox_image(store)
        context = base / "context"
        context.mkdir()
        yield BuildEnv(base, store, busybox, runc_root, parent, context)
    finally:
        try:
            if runc_root.exists():
                runc = Runc(runc_root)
                for state in await runc.list():
                    with contextlib.suppress(Exception):
                        await runc.delete(state.id, force=True)
            await asyncio.to_thread(_unmount_all, base)
            await asyncio.to_thread(cgroups.remove, f"/{parent}")
        finally:
            shutil.rmtree(base, ignore_errors=True)
