"""One RUN: a runc container on an overlay of the parent's layers with a fresh upper dir,
which becomes the step's layer.

The container gets Docker's hardening from agent/runtime/spec.py (the default capability
set, no_new_privs, masked and read-only /proc paths, a device allow-list) and its own
pid, ipc, uts and mount namespaces. `runc run` runs in the foreground as a child of the
builder (no shim: the build waits for it anyway); its stdout and stderr are one pipe,
streamed line by line.

Network decision: by default the RUN shares the builder's network namespace (the node's,
like `docker build --network=host`) with the host's /etc/resolv.conf and /etc/hosts bound
read-only, so `apk add` or `pip install` can reach the internet, and a build never needs
the cluster's overlay networks. `network="none"` gives a fresh namespace with loopback
only.

Whatever happens (a failure, a timeout, cancellation) the container is deleted, its
cgroup removed and the overlay unmounted before this returns."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agent.build import overlay
from agent.build.diff import drop_stubs, existing_stubs
from agent.build.errors import RunFailed
from agent.runtime import cgroups
from agent.runtime.records import write_json_atomic
from agent.runtime.request import ContainerRequest, RequestError
from agent.runtime.runc import Runc, RuncError
from agent.runtime.shim import runc_error
from agent.runtime.spec import HostFacts, oci_config
from agent.runtime.users import lookup_user, resolve_in_rootfs

Network = Literal["host", "none"]
TAIL_LINES = 20  # output lines a failure shows
DRAIN_TIMEOUT = 5.0  # after runc exits, how long to copy what is left in the pipe
MAX_LINE = 16 * 1024


@dataclass(frozen=True)
class RunSpec:
    container_id: str
    argv: list[str]
    env: dict[str, str]
    cwd: str
    user: str | None
    network: Network
    cgroup_parent: str


class RunSetupError(RuntimeError):
    """The container could not be set up (unknown USER, runc refused the config)."""


async def _pump(reader: asyncio.StreamReader, emit: Callable[[str], None],
                tail: collections.deque[str]) -> None:
    buffer = b""
    while chunk := await reader.read(65536):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        while len(buffer) > MAX_LINE:
            lines.append(buffer[:MAX_LINE])
            buffer = buffer[MAX_LINE:]
        for raw in lines:
            text = raw.decode(errors="replace").rstrip("\r")
            tail.append(text)
            emit(text)
    if buffer:
        text = buffer.decode(errors="replace")
        tail.append(text)
        emit(text)


def _prepare_rootfs(rootfs: Path, cwd: str) -> set[str]:
    """Blocking: what mount points exist before runc runs, and the working dir made (in
    the upper dir, so it is part of the layer, as Docker makes it)."""
    before = existing_stubs(rootfs)
    resolve_in_rootfs(rootfs, cwd).mkdir(parents=True, exist_ok=True)
    return before


async def run_in_container(spec: RunSpec, lowers: list[Path], step_dir: Path, runc: Runc,
                           host: HostFacts, emit: Callable[[str], None]) -> Path:
    """Run the step; return the upper dir (unmounted, runc's mount stubs removed) for the
    caller to turn into a layer. RunFailed on a non-zero exit; RunSetupError when the
    container could not start."""
    rootfs = await overlay.mount(step_dir, lowers, writable=True)
    cgroup_path = f"/{spec.cgroup_parent}/{spec.container_id}"
    proc: asyncio.subprocess.Process | None = None
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    try:
        before = await asyncio.to_thread(_prepare_rootfs, rootfs, spec.cwd)
        try:
            user = await asyncio.to_thread(lookup_user, rootfs, spec.user)
            host_files = spec.network == "host"
            req = ContainerRequest(
                id=spec.container_id, bundle_dir=step_dir / "bundle", rootfs=rootfs,
                args=spec.argv, env=spec.env, cwd=spec.cwd, user=spec.user,
                hostname="skiff-build",
                netns_path=f"/proc/{os.getpid()}/ns/net" if host_files else None,
                hosts_file=Path("/etc/hosts") if host_files else None,
                resolv_file=Path("/etc/resolv.conf") if host_files else None,
                cgroup_parent=spec.cgroup_parent)
            config = oci_config(req, user, host)
        except RequestError as exc:
            raise RunSetupError(str(exc)) from None
        await asyncio.to_thread(_write_bundle, req.bundle_dir, config)
        runc_log = step_dir / "runc.log"
        proc = await asyncio.create_subprocess_exec(
            *runc.argv("--log", str(runc_log), "--log-format", "json", "run", "--bundle",
                       str(req.bundle_dir), spec.container_id),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        assert proc.stdout is not None
        pump = asyncio.create_task(_pump(proc.stdout, emit, tail))
        code = await proc.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pump), DRAIN_TIMEOUT)
        pump.cancel()
        if code != 0:
            error = await asyncio.to_thread(runc_error, runc_log)
            if error is not None:  # runc itself failed: the process never ran
                raise RunSetupError(f"runc: {error}")
            raise RunFailed(128 - code if code < 0 else code, list(tail))
    finally:
        await _cleanup(proc, spec, runc, rootfs, cgroup_path)
    upper = step_dir / "upper"
    await asyncio.to_thread(drop_stubs, upper, before)
    return upper


def _write_bundle(bundle: Path, config: dict[str, object]) -> None:
    bundle.mkdir(parents=True, exist_ok=True)
    write_json_atomic(bundle / "config.json", config)


async def _cleanup(proc: asyncio.subprocess.Process | None, spec: RunSpec, runc: Runc,
                   rootfs: Path, cgroup_path: str) -> None:
    """Shielded from cancellation: a cancelled build must still leave nothing behind."""
    async def work() -> None:
        if proc is not None and proc.returncode is None:
            # Cancelled mid-run: killing the container's init takes every process with it.
            with contextlib.suppress(RuncError):
                await runc.kill(spec.container_id, int(signal.SIGKILL))
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 10)
        with contextlib.suppress(RuncError):
            await runc.delete(spec.container_id, force=True)
        try:
            await overlay.unmount(rootfs)
        finally:
            await asyncio.to_thread(cgroups.remove, cgroup_path)

    task = asyncio.ensure_future(work())
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise
