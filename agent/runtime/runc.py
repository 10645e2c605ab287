"""Async wrapper over the runc command line.

Every call is a subprocess started with ``asyncio.create_subprocess_exec`` and bounded by a
timeout, so the agent's event loop never blocks on runc. Each node passes its own
``--root`` (runc's state directory), so lab nodes on one machine do not see each other's
containers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

DEFAULT_TIMEOUT = 30.0
_LOGFMT_MSG = re.compile(r'msg="((?:[^"\\]|\\.)*)"')


class RuncError(RuntimeError):
    """runc failed: the command, its exit code and runc's own message."""

    def __init__(self, argv: list[str], exit_code: int | None, message: str) -> None:
        self.argv = argv
        self.exit_code = exit_code
        self.message = message
        super().__init__(f"{' '.join(argv)} failed (exit {exit_code}): {message}")


class ContainerNotFound(RuncError):
    """runc has no such container under this root."""


class ContainerNotRunning(RuncError):
    """The container exists but is not running (kill, exec)."""


class RuncTimeout(RuncError):
    """runc did not finish within the deadline (it was killed)."""


def runc_message(stderr: str) -> str:
    """runc's error line without the logfmt wrapping: 'container does not exist'."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    last = lines[-1]
    match = _LOGFMT_MSG.search(last)
    if match:
        return match.group(1).replace('\\"', '"').replace("\\\\", "\\")
    with contextlib.suppress(ValueError, AttributeError):
        return str(json.loads(last)["msg"])
    return last.strip()


def _classify(argv: list[str], code: int | None, stderr: str) -> RuncError:
    message = runc_message(stderr)
    lowered = message.lower()
    if "does not exist" in lowered:
        return ContainerNotFound(argv, code, message)
    if "not running" in lowered or "stopped container" in lowered:
        return ContainerNotRunning(argv, code, message)
    return RuncError(argv, code, message)


@dataclass(frozen=True)
class RuncState:
    id: str
    pid: int
    status: str  # creating, created, running, paused, stopped
    bundle: str
    created: str = ""
    annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RuncState:
        return cls(id=str(data["id"]), pid=int(data.get("pid") or 0),
                   status=str(data.get("status", "")), bundle=str(data.get("bundle", "")),
                   created=str(data.get("created", "")),
                   annotations=dict(data.get("annotations") or {}))


class ExecResult(NamedTuple):
    exit_code: int
    stdout: str
    stderr: str


async def _kill_and_reap(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    with contextlib.suppress(Exception):
        await proc.wait()


class Runc:
    def __init__(self, root: Path, binary: str = "runc",
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.root = Path(root)
        self.binary = binary
        self.timeout = timeout

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.root), *args]

    async def _run(self, *args: str, timeout: float | None = None) -> tuple[int, str, str]:
        argv = self.argv(*args)
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout or self.timeout)
        except TimeoutError:
            await _kill_and_reap(proc)
            raise RuncTimeout(argv, None, f"no answer within {timeout or self.timeout}s"
                              ) from None
        except BaseException:
            await _kill_and_reap(proc)
            raise
        code = proc.returncode if proc.returncode is not None else -1
        return code, out.decode(errors="replace"), err.decode(errors="replace")

    async def _check(self, *args: str, timeout: float | None = None) -> str:
        code, out, err = await self._run(*args, timeout=timeout)
        if code != 0:
            raise _classify(self.argv(*args), code, err)
        return out

    async def state(self, container_id: str) -> RuncState | None:
        """The container's state, or None when runc does not know it."""
        try:
            out = await self._check("state", container_id)
        except ContainerNotFound:
            return None
        return RuncState.from_json(json.loads(out))

    async def list(self) -> list[RuncState]:
        out = await self._check("list", "--format", "json")
        data = json.loads(out or "null") or []  # runc prints "null" for an empty root
        return [RuncState.from_json(item) for item in data]

    async def kill(self, container_id: str, signal: int | str, all_processes: bool = False
                   ) -> bool:
        """Send ``signal``; False when the container is missing or not running."""
        args = ["kill"] + (["--all"] if all_processes else []) + [container_id, str(signal)]
        try:
            await self._check(*args)
        except (ContainerNotFound, ContainerNotRunning):
            return False
        return True

    async def delete(self, container_id: str, force: bool = False) -> bool:
        """Delete the container (``force`` kills it first); False when it was missing."""
        args = ["delete"] + (["--force"] if force else []) + [container_id]
        try:
            await self._check(*args)
        except ContainerNotFound:
            return False
        return True

    async def stats(self, container_id: str) -> dict[str, Any]:
        """One ``runc events --stats`` sample: cgroup counters (memory, pids, cpu)."""
        out = await self._check("events", "--stats", container_id)
        return dict(json.loads(out).get("data") or {})

    async def exec(self, container_id: str, args: list[str], *, timeout: float,
                   env: dict[str, str] | None = None, cwd: str | None = None,
                   user: str | None = None) -> ExecResult:
        """Run ``args`` in the running container (its config's user, env and caps unless
        overridden) and return its exit code and output.

        On timeout the exec'd process itself is SIGKILLed (killing only runc would leave it
        running in the container) and RuncTimeout is raised.
        """
        with tempfile.TemporaryDirectory(prefix="skiff-exec-") as tmp:
            pid_file = Path(tmp) / "pid"
            opts = ["exec", "--pid-file", str(pid_file)]
            for key, value in (env or {}).items():
                opts += ["--env", f"{key}={value}"]
            if cwd:
                opts += ["--cwd", cwd]
            if user:
                opts += ["--user", user]
            argv = self.argv(*opts, container_id, *args)
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            try:
                out, err = await asyncio.wait_for(proc.communicate(), timeout)
            except TimeoutError:
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(pid_file.read_text().strip()), 9)
                # Let runc reap its child and exit by itself: killed first, runc would leave
                # the process a zombie re-parented to the container's PID 1 (or to a
                # subreaper outside the container that may never reap it).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 2.0)
                await _kill_and_reap(proc)
                raise RuncTimeout(argv, None, f"exec did not finish within {timeout}s"
                                  ) from None
            except BaseException:
                await _kill_and_reap(proc)
                raise
            stderr = err.decode(errors="replace")
            code = proc.returncode if proc.returncode is not None else -1
            # No pid file: runc never started the process, so the exit code is runc's.
            if not pid_file.exists():
                raise _classify(argv, code, stderr)
            return ExecResult(code, out.decode(errors="replace"), stderr)
