"""Small files the shim leaves for the agent: the exit record and pid files.

Written atomically (temp file in the same directory, fsync, rename) so that a reader sees
either nothing or the whole record, even if the shim dies half-way.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def rfc3339_nano(ns: int | None = None) -> str:
    """UTC time with nanoseconds, as Docker writes it: 2024-05-01T10:00:00.123456789Z."""
    ns = time.time_ns() if ns is None else ns
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


def write_atomic(path: Path, data: bytes) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_json_atomic(path: Path, value: Any) -> None:
    write_atomic(path, (json.dumps(value, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> Any | None:
    """The file's JSON, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def read_pid(path: Path) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def pid_alive(pid: int | None, cmdline_contains: str | None = None) -> bool:
    """Whether ``pid`` is a live process (a zombie is dead: this sandbox's PID 1 does not
    reap orphans), optionally whose command line mentions ``cmdline_contains`` (a stale
    pid file may name a pid reused by something else)."""
    if not pid or pid <= 0:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the command name in parentheses, which may itself hold spaces.
    if stat[stat.rfind(")") + 2:].startswith(("Z", "X")):
        return False
    if cmdline_contains is not None:
        with contextlib.suppress(OSError):
            return cmdline_contains.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
        return False
    return True


@dataclass(frozen=True)
class ExitRecord:
    exit_code: int
    oom_killed: bool
    finished_at: str
    started_at: str | None = None
    pid: int | None = None
    # runc's message when the container could not be started at all (bad command, mount).
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"exitCode": self.exit_code, "oomKilled": self.oom_killed,
                                "finishedAt": self.finished_at}
        if self.started_at is not None:
            data["startedAt"] = self.started_at
        if self.pid is not None:
            data["pid"] = self.pid
        if self.error is not None:
            data["error"] = self.error
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExitRecord:
        return cls(exit_code=int(data["exitCode"]), oom_killed=bool(data.get("oomKilled")),
                   finished_at=str(data.get("finishedAt", "")),
                   started_at=data.get("startedAt"), pid=data.get("pid"),
                   error=data.get("error"))


def read_exit(path: Path) -> ExitRecord | None:
    data = read_json(path)
    if not isinstance(data, dict):
        return None
    try:
        return ExitRecord.from_json(data)
    except (KeyError, TypeError, ValueError):
        return None


def write_exit(path: Path, record: ExitRecord) -> None:
    write_json_atomic(path, record.to_json())
