"""Run a real single-member etcd: for ``skiff up`` and for the integration tests.

Synchronous on purpose (subprocess, polling): it runs before any event loop needs the
store, and the tests call it from session fixtures.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from skiff.processes import pid_alive

ETCD_BINARY = "etcd"
MEMBER_NAME = "skiff"


class EtcdStartError(RuntimeError):
    """etcd exited or did not become healthy before the deadline."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])



def _runs(pid: int, program: str) -> bool:
    """Whether ``pid`` runs ``program`` (its argv mentions it): a stale pid file may name
    a pid that now belongs to something else entirely."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(program in os.path.basename(arg.decode(errors="replace")) for arg in argv)


def stop_pid(pid: int, timeout: float = 10.0, expect: str | None = None) -> bool:
    """SIGTERM ``pid``, SIGKILL it after ``timeout``; True once it is gone.

    With ``expect`` (e.g. "etcd"), a process whose command line does not mention it is
    left alone (and True returned): the pid was reused, ours is gone already.
    """
    if not pid_alive(pid) or (expect is not None and not _runs(pid, expect)):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for sig in (signal.SIGKILL, None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return True
            time.sleep(0.05)
        if sig is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
    return not pid_alive(pid)


@dataclass
class EtcdProcess:
    host: str
    port: int
    peer_port: int
    pid: int
    data_dir: Path
    log_path: Path
    _popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def client_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def alive(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        return pid_alive(self.pid)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; returns once it has exited."""
        if self._popen is None:
            stop_pid(self.pid, timeout, expect=ETCD_BINARY)
            return
        if self._popen.poll() is not None:
            return
        self._popen.terminate()
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait(timeout)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=1.0) as resp:
            return bool(json.load(resp).get("health") == "true")
    except (OSError, ValueError, urllib.error.URLError):
        return False


def start_etcd(data_dir: Path, host: str = "127.0.0.1", client_port: int = 0,
               peer_port: int = 0, log_path: Path | None = None, detach: bool = False,
               ready_timeout: float = 30.0) -> EtcdProcess:
    """Start etcd on ``data_dir`` and return once it answers as healthy.

    Port 0 picks a free port. An existing data dir is reused as is (a restart keeps its
    data and revisions). ``detach=True`` puts etcd in its own session, so it outlives the
    caller (``skiff up``). Raises EtcdStartError with the log's tail if it fails.
    """
    binary = shutil.which(ETCD_BINARY)
    if binary is None:
        raise EtcdStartError(f"{ETCD_BINARY} not found on PATH (install etcd-server)")
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    # Beside the data dir, not in it: etcd warns about unknown files in its data dir.
    log_path = Path(log_path) if log_path else data_dir.with_name(data_dir.name + ".log")
    client_port = client_port or free_port(host)
    peer_port = peer_port or free_port(host)
    client_url = f"http://{host}:{client_port}"
    peer_url = f"http://{host}:{peer_port}"
    argv = [
        binary,
        "--name", MEMBER_NAME,
        "--data-dir", str(data_dir),
        "--listen-client-urls", client_url,
        "--advertise-client-urls", client_url,
        "--listen-peer-urls", peer_url,
        "--initial-advertise-peer-urls", peer_url,
        "--initial-cluster", f"{MEMBER_NAME}={peer_url}",
    ]
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=detach)
    proc = EtcdProcess(host, client_port, peer_port, popen.pid, data_dir, log_path, popen)
    deadline = time.monotonic() + ready_timeout
    while not _healthy(client_url):
        if popen.poll() is not None:
            raise EtcdStartError(
                f"etcd exited with status {popen.returncode} before it was ready "
                f"({' '.join(argv)}); log {log_path}:\n{_log_tail(log_path)}")
        if time.monotonic() > deadline:
            proc.stop()
            raise EtcdStartError(
                f"etcd did not become healthy at {client_url} within {ready_timeout:.0f}s; "
                f"log {log_path}:\n{_log_tail(log_path)}")
        time.sleep(0.05)
    return proc
