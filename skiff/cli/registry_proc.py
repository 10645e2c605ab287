"""The cluster registry process (Debian's docker-registry), for `skiff up` and `skiff lab up`.

Its config and data live in one directory of the caller's state dir, and the config's path
is on the process's command line: whoever started it can tell it from a reused pid.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from skiff.processes import pid_alive


def write_config(base: Path, addr: str) -> Path:
    """`base`/config.yml serving `addr` (HOST:PORT) from `base`/data, deletes enabled (so
    that a registry-side gc can reclaim space)."""
    (base / "data").mkdir(parents=True, exist_ok=True)
    config = base / "config.yml"
    config.write_text(json.dumps({  # JSON is YAML
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(base / "data")},
                    "delete": {"enabled": True}},
        "http": {"addr": addr}}, indent=1) + "\n")
    return config


def spawn(base: Path, addr: str, log: Path) -> int:
    """Start the registry detached (its own session, outliving the command); its pid."""
    config = write_config(base.absolute(), addr)  # absolute: find() matches it from any cwd
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(["docker-registry", "serve", str(config)],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True).pid


def answers(addr: str) -> bool:
    """Whether GET /v2/ at `addr` gets the registry's answer (200, or 401 with auth)."""
    try:
        with urllib.request.urlopen(f"http://{addr}/v2/", timeout=2) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except (urllib.error.URLError, OSError):
        return False


def wait_ready(addr: str, pid: int, log: Path, timeout: float = 20.0) -> None:
    """Until the registry answers; RuntimeError (with its log's tail) if it exits first or
    the deadline passes."""
    deadline = time.monotonic() + timeout
    while not answers(addr):
        if not pid_alive(pid):
            raise RuntimeError(f"the registry at {addr} exited during start-up; its log:\n"
                               f"{log_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the registry did not answer at {addr} within "
                               f"{timeout:.0f}s; its log:\n{log_tail(log)}")
        time.sleep(0.1)


def is_ours(pid: int, base: Path) -> bool:
    """`pid` is a registry serving the config under `base` (not a reused pid)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return str(base.absolute() / "config.yml").encode() in argv


def find(base: Path) -> list[int]:
    """Every registry serving `base`'s config, recorded or not (a crash between starting
    one and writing its pid down must not leave it running for ever)."""
    return [int(d.name) for d in Path("/proc").iterdir()
            if d.name.isdigit() and is_ours(int(d.name), base)]


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
