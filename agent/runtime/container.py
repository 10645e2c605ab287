"""The runtime API the agent uses: create and start, stop, remove, status, exec, list.

One ``Runtime`` per node: its own runc ``--root`` and state directory. Every call is safe
to repeat and tolerates "already gone" (post-run must be safe without pre-run), so the
agent can re-run any step after a crash. State that must survive an agent restart lives on
disk, in ``<state_dir>/<id>/``: meta.json (where the bundle, log and exit record are),
shim.pid, init.pid, runc.log and shim.log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

import agent
from agent.runtime import cgroups, host
from agent.runtime.logfile import DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE
from agent.runtime.logs import read_entries
from agent.runtime.records import (
    pid_alive,
    read_exit,
    read_json,
    read_pid,
    write_json_atomic,
)
from agent.runtime.request import ContainerRequest, signal_number, validate_id
from agent.runtime.runc import ExecResult, Runc, RuncState
from agent.runtime.spec import HostFacts, oci_config
from agent.runtime.users import lookup_user

SHIM_MODULE = "agent.runtime.shim"
# The shim imports this package from wherever the agent runs it.
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(agent.__file__)))
POLL = 0.02
_LIVE = ("creating", "created", "running", "paused")


class ContainerState(StrEnum):
    STARTING = "starting"  # the shim runs, runc has not started the process yet
    RUNNING = "running"
    STOPPED = "stopped"
    MISSING = "missing"


@dataclass(frozen=True)
class ContainerStatus:
    id: str
    state: ContainerState
    pid: int | None = None
    exit_code: int | None = None
    oom_killed: bool = False
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None


class CleanupError(RuntimeError):
    """remove() could not delete everything (e.g. a cgroup still busy); call it again."""


class ContainerStartError(RuntimeError):
    """The container did not start; the message says why (runc's error, log tail)."""

    def __init__(self, container_id: str, message: str) -> None:
        self.container_id = container_id
        super().__init__(f"container {container_id}: {message}")


@dataclass(frozen=True)
class _Meta:
    id: str
    bundle_dir: str
    log_path: str
    exit_path: str
    cgroup_path: str
    stop_signal: str


def _remove_tree(path: Path) -> None:
    """rm -rf that never descends into a mount point (the rootfs may be an overlay mounted
    inside the bundle: deleting through it would wipe image layers)."""
    if not path.exists() or os.path.ismount(path):
        return
    for entry in list(os.scandir(path)):
        child = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            _remove_tree(child)
        else:
            child.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # left non-empty only around a mount point
        path.rmdir()


def _shim_marker(container_id: str) -> str:
    # How this container's shim shows in /proc/<pid>/cmdline (NUL-separated argv): a
    # stale pid file may name a pid reused by another program, or by another shim.
    return f"{SHIM_MODULE}\0--id\0{container_id}\0"


def _tail_of(path: Path, size: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


class Runtime:
    def __init__(self, runc_root: Path, state_dir: Path, runc_binary: str = "runc",
                 host_facts: HostFacts | None = None, python: str = sys.executable) -> None:
        self.runc = Runc(Path(runc_root), runc_binary)
        self.state_dir = Path(state_dir)
        self.python = python
        self._host = host_facts
        self._shims: dict[str, subprocess.Popen[bytes]] = {}

    def _dir(self, container_id: str) -> Path:
        return self.state_dir / validate_id(container_id)

    async def host_facts(self) -> HostFacts:
        if self._host is None:
            self._host = await asyncio.to_thread(host.gather)
        return self._host

    def _meta(self, container_id: str) -> _Meta | None:
        data = read_json(self._dir(container_id) / "meta.json")
        try:
            return _Meta(**data) if isinstance(data, dict) else None
        except TypeError:
            return None

    def _shim_alive(self, container_id: str) -> bool:
        popen = self._shims.get(container_id)
        if popen is not None:
            # Our own child: ask it (its pid file may not be written yet). poll() also
            # reaps it, so no zombie is left behind.
            if popen.poll() is None:
                return True
            self._shims.pop(container_id, None)
            return False
        pid = read_pid(self._dir(container_id) / "shim.pid")
        return pid_alive(pid, _shim_marker(container_id))

    # -- create and start -------------------------------------------------------------

    async def create_and_start(self, req: ContainerRequest, log_path: Path, exit_path: Path,
                               *, log_max_size: int = DEFAULT_MAX_SIZE,
                               log_max_files: int = DEFAULT_MAX_FILES,
                               timeout: float = 30.0) -> int:
        """Write the bundle, start the shim detached, and return the container's init pid
        once runc has started it (0 if it already exited and the pid is unknown).

        Idempotent: a container already running (or starting) under this id is waited for,
        not started twice. Raises ContainerStartError if it cannot start or does not
        start within ``timeout``; the caller should then ``remove`` it.
        """
        state = await self.status(req.id)
        if state.state is ContainerState.RUNNING and state.pid:
            return state.pid
        if state.state is not ContainerState.STARTING:
            await self._start(req, Path(log_path), Path(exit_path), log_max_size,
                              log_max_files)
        return await self._wait_started(req.id, Path(exit_path), timeout)

    async def _start(self, req: ContainerRequest, log_path: Path, exit_path: Path,
                     log_max_size: int, log_max_files: int) -> None:
        await self.runc.delete(req.id, force=True)  # a leftover from a crash, if any
        user = await asyncio.to_thread(lookup_user, req.rootfs, req.user)
        config = oci_config(req, user, await self.host_facts())
        directory = self._dir(req.id)
        meta = _Meta(req.id, str(req.bundle_dir), str(log_path), str(exit_path),
                     req.cgroup_path, req.stop_signal)

        def prepare() -> None:
            for path in (directory, req.bundle_dir, log_path.parent, exit_path.parent):
                path.mkdir(parents=True, exist_ok=True)
            for stale in (exit_path, directory / "init.pid", directory / "shim.pid"):
                stale.unlink(missing_ok=True)
            write_json_atomic(req.bundle_dir / "config.json", config)
            write_json_atomic(directory / "meta.json", asdict(meta))

        await asyncio.to_thread(prepare)
        argv = [self.python, "-m", SHIM_MODULE, "--id", req.id,
                "--bundle", str(req.bundle_dir), "--root", str(self.runc.root),
                "--runc", self.runc.binary, "--log", str(log_path),
                "--log-max-size", str(log_max_size), "--log-max-files", str(log_max_files),
                "--exit-file", str(exit_path), "--pid-file", str(directory / "shim.pid"),
                "--init-pid-file", str(directory / "init.pid"),
                "--runc-log", str(directory / "runc.log"),
                "--cgroup-path", req.cgroup_path, "--stop-signal", req.stop_signal]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)

        def spawn() -> subprocess.Popen[bytes]:
            with open(directory / "shim.log", "ab") as shim_log:
                # Not asyncio's subprocess: its transport kills the child when collected,
                # and the shim must outlive this process. A new session keeps it out of
                # the agent's process group (no signal to the group reaches it).
                return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=shim_log,
                                        stderr=shim_log, cwd="/", env=env,
                                        start_new_session=True)

        self._shims[req.id] = await asyncio.to_thread(spawn)

    async def _wait_started(self, container_id: str, exit_path: Path, timeout: float) -> int:
        directory = self._dir(container_id)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            record = await asyncio.to_thread(read_exit, exit_path)
            if record is not None:
                if record.error:
                    raise ContainerStartError(container_id, record.error)
                return record.pid or 0  # it ran, and already exited
            pid = await asyncio.to_thread(read_pid, directory / "init.pid")
            if pid:  # runc writes it once the container's process has been started
                return pid
            if not await asyncio.to_thread(self._shim_alive, container_id) and \
                    await asyncio.to_thread(read_exit, exit_path) is None:
                tail = await asyncio.to_thread(_tail_of, directory / "shim.log")
                raise ContainerStartError(container_id,
                                          f"the shim exited without an exit record: {tail}")
            if asyncio.get_running_loop().time() > deadline:
                raise ContainerStartError(container_id, f"not started within {timeout}s")
            await asyncio.sleep(POLL)

    # -- status -----------------------------------------------------------------------

    async def status(self, container_id: str) -> ContainerStatus:
        meta = await asyncio.to_thread(self._meta, container_id)
        runc_state: RuncState | None = await self.runc.state(container_id)
        record = await asyncio.to_thread(read_exit, Path(meta.exit_path)) if meta else None
        shim_alive = await asyncio.to_thread(self._shim_alive, container_id)
        if record is not None:
            return ContainerStatus(container_id, ContainerState.STOPPED, record.pid,
                                   record.exit_code, record.oom_killed, record.started_at,
                                   record.finished_at, record.error)
        if runc_state is not None and runc_state.status in _LIVE and (
                shim_alive or runc_state.status in ("running", "paused")):
            state = ContainerState.RUNNING if runc_state.status in ("running", "paused") \
                else ContainerState.STARTING
            return ContainerStatus(container_id, state, runc_state.pid or None)
        if shim_alive:
            return ContainerStatus(container_id, ContainerState.STARTING)
        if meta is not None or runc_state is not None:
            return ContainerStatus(container_id, ContainerState.STOPPED,
                                   error="the container's supervisor (shim) is gone and "
                                         "left no exit record")
        return ContainerStatus(container_id, ContainerState.MISSING)

    async def _wait_stopped(self, container_id: str, timeout: float) -> ContainerStatus:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            current = await self.status(container_id)
            if current.state in (ContainerState.STOPPED, ContainerState.MISSING) or \
                    asyncio.get_running_loop().time() > deadline:
                return current
            await asyncio.sleep(POLL * 2)

    # -- stop, remove -----------------------------------------------------------------

    async def stop(self, container_id: str, stop_signal: str | int | None = None,
                   grace_seconds: float = 10.0, kill_timeout: float = 10.0
                   ) -> ContainerStatus:
        """Send the stop signal (the request's by default), SIGKILL after
        ``grace_seconds``, and return the final status. A stopped or missing container
        is left as it is."""
        current = await self.status(container_id)
        if current.state is ContainerState.STARTING:
            current = await self._wait_running(container_id, kill_timeout)
        if current.state is not ContainerState.RUNNING:
            return current
        meta = await asyncio.to_thread(self._meta, container_id)
        name = stop_signal if stop_signal is not None else (
            meta.stop_signal if meta else "SIGTERM")
        await self.runc.kill(container_id, signal_number(name))
        current = await self._wait_stopped(container_id, grace_seconds)
        if current.state is ContainerState.RUNNING:
            # Killing PID 1 of the container's pid namespace takes every process with it.
            await self.runc.kill(container_id, int(signal.SIGKILL))
            current = await self._wait_stopped(container_id, kill_timeout)
        return current

    async def _wait_running(self, container_id: str, timeout: float) -> ContainerStatus:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            current = await self.status(container_id)
            if current.state is not ContainerState.STARTING or \
                    asyncio.get_running_loop().time() > deadline:
                return current
            await asyncio.sleep(POLL)

    async def remove(self, container_id: str, timeout: float = 10.0) -> None:
        """Kill and delete the container, its shim, cgroups, bundle and state. The log and
        exit record stay (they belong to the caller). Safe on a missing container."""
        meta = await asyncio.to_thread(self._meta, container_id)
        await self.runc.delete(container_id, force=True)
        directory = self._dir(container_id)
        shim_pid = await asyncio.to_thread(read_pid, directory / "shim.pid")
        deadline = asyncio.get_running_loop().time() + timeout
        # The shim notices runc's exit, writes the exit record and exits by itself.
        while await asyncio.to_thread(self._shim_alive, container_id):
            if asyncio.get_running_loop().time() > deadline:
                if shim_pid and pid_alive(shim_pid, _shim_marker(container_id)):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(shim_pid, signal.SIGKILL)
                break
            await asyncio.sleep(POLL)
        popen = self._shims.pop(container_id, None)
        if popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(popen.wait, 5)

        def cleanup() -> None:
            if meta is not None:
                left = cgroups.remove(meta.cgroup_path)
                if left:
                    raise CleanupError(f"container {container_id}: cgroups still busy: "
                                       f"{', '.join(map(str, left))}")
                _remove_tree(Path(meta.bundle_dir))
            shutil.rmtree(directory, ignore_errors=True)

        await asyncio.to_thread(cleanup)

    # -- exec, list, logs -------------------------------------------------------------

    async def exec(self, container_id: str, args: list[str], timeout: float = 30.0,
                   env: dict[str, str] | None = None, cwd: str | None = None,
                   user: str | None = None) -> ExecResult:
        """Run a command in the running container: (exit_code, stdout, stderr)."""
        return await self.runc.exec(container_id, args, timeout=timeout, env=env, cwd=cwd,
                                    user=user)

    async def list_ids(self) -> list[str]:
        """Containers this runtime knows: in runc's root, or with state on disk."""
        ids = {s.id for s in await self.runc.list()}

        def on_disk() -> set[str]:
            try:
                return {d.name for d in self.state_dir.iterdir()
                        if (d / "meta.json").exists()}
            except FileNotFoundError:
                return set()

        return sorted(ids | await asyncio.to_thread(on_disk))

    async def last_log_lines(self, container_id: str, lines: int = 20) -> list[str]:
        """The tail of the log, for a failed task's message."""
        meta = await asyncio.to_thread(self._meta, container_id)
        if meta is None:
            return []
        entries = await asyncio.to_thread(read_entries, Path(meta.log_path), lines)
        return [e.text for e in entries]


__all__ = ["CleanupError", "ContainerStartError", "ContainerState", "ContainerStatus", "ExecResult",
           "Runtime"]
