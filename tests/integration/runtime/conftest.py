"""Real runc for the runtime tests: a busybox rootfs, a private runc root and state dir,
and a cgroup parent unique to this session; everything is removed afterwards, even when
a test fails half-way (containers, shims, cgroups under every hierarchy, temp dirs)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent.runtime import cgroups
from agent.runtime.container import Runtime
from agent.runtime.records import pid_alive
from agent.runtime.request import ContainerRequest

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "echo", "sleep", "cat", "id", "hostname", "ps", "ls", "mount", "head",
           "dd", "awk", "grep", "seq", "true", "false", "kill", "wc", "tr", "env", "touch",
           "mkdir", "rm", "tail", "yes")
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:1000:1000:nobody:/home/nobody:/bin/sh\n"
GROUP = "root:x:0:\nnogroup:x:1000:\nstaff:x:50:nobody\n"

pytestmark = pytest.mark.integration


def make_rootfs(root: Path) -> Path:
    """A tiny image: static busybox and its applets, /etc/passwd with root and nobody."""
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/nobody"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    return root


def _requirements() -> str | None:
    if os.geteuid() != 0:
        return "runtime tests need root"
    if shutil.which("runc") is None:
        return "runc is not installed"
    if not BUSYBOX.exists():
        return "busybox-static is not installed"
    if cgroups.memory_dir("/") is None:
        return "no cgroup v1 memory hierarchy"
    return None


async def wait_for(predicate: Callable[[], Awaitable[Any]], what: str,
                   timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy; fail naming ``what`` and the last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last saw {last!r}")


@pytest.fixture(scope="session")
def cgroup_root() -> Iterator[str]:
    """``skiff-test-<random>``: every test's cgroup parent lives below it."""
    reason = _requirements()
    if reason:
        pytest.skip(reason)
    name = f"skiff-test-{secrets.token_hex(4)}"
    try:
        yield name
    finally:
        left = cgroups.remove(f"/{name}")
        assert not left, f"cgroups left behind: {left}"


@dataclass
class RuntimeEnv:
    """One test's node: its runtime, directories, and a factory of requests."""

    runtime: Runtime
    base: Path
    cgroup_parent: str
    _ids: itertools.count = field(default_factory=itertools.count)

    def request(self, args: list[str], **kw: Any) -> ContainerRequest:
        cid = kw.pop("id", f"c{next(self._ids)}-{secrets.token_hex(3)}")
        bundle = self.base / "bundles" / cid
        rootfs = kw.pop("rootfs", None) or make_rootfs(self.base / "rootfs" / cid)
        kw.setdefault("hostname", cid[:12])
        return ContainerRequest(id=cid, bundle_dir=bundle, rootfs=rootfs, args=args,
                                cgroup_parent=self.cgroup_parent, **kw)

    def log_path(self, cid: str) -> Path:
        return self.base / "logs" / cid / "container.log"

    def exit_path(self, cid: str) -> Path:
        return self.base / "logs" / cid / "exit.json"

    async def start(self, req: ContainerRequest, **kw: Any) -> int:
        return await self.runtime.create_and_start(req, self.log_path(req.id),
                                                   self.exit_path(req.id), **kw)


def shim_pids(marker: str) -> list[int]:
    """Live shim processes whose command line mentions ``marker`` (a test's base dir)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes()
                if b"agent.runtime.shim" in cmdline and marker.encode() in cmdline and \
                        pid_alive(int(entry.name)):
                    pids.append(int(entry.name))
    return pids


_node_numbers = itertools.count()


@pytest.fixture
async def env(cgroup_root: str) -> AsyncIterator[RuntimeEnv]:
    base = Path(tempfile.mkdtemp(prefix="skiff-rt-"))
    parent = f"{cgroup_root}/node{next(_node_numbers)}"
    runtime = Runtime(base / "runc", base / "state")
    try:
        yield RuntimeEnv(runtime, base, parent)
    finally:
        try:
            for cid in await runtime.list_ids():
                with contextlib.suppress(Exception):
                    await runtime.remove(cid)
            for state in await runtime.runc.list():
                with contextlib.suppress(Exception):
                    await runtime.runc.delete(state.id, force=True)
            for pid in shim_pids(str(base)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            cgroups.remove(f"/{parent}")
        finally:
            shutil.rmtree(base, ignore_errors=True)
