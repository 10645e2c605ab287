"""`skiff up` / `skiff down`: a private etcd, a controller, the cluster registry and a
local agent on this machine.

All run detached (their own session, logs under the state directory) so they outlive
the command; ``up.json`` records their pids and ports for ``down``. The registry (Debian's
docker-registry on 127.0.0.1, data in ``<state>/registry/data``) is where the agent pulls
bare image names from; `down` keeps its data, `down --purge` removes it with the rest.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from controller.store.etcd_server import start_etcd, stop_pid
from skiff.cli import registry_proc
from skiff.cli.context import CliError
from skiff.client.config import ClientConfig, write_config
from skiff.processes import pid_alive


def default_state_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/skiff")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "skiff"


@dataclass
class Running:
    etcd_pid: int
    etcd_port: int
    controller_pid: int
    controller_port: int
    agent_pid: int = 0
    node: str = ""
    bridge: str = "skiff0"
    subnet: str = "10.88.0.0/24"
    registry_pid: int = 0
    registry_port: int = 0


@dataclass(frozen=True)
class NodeOptions:
    """The local node `skiff up` runs: its agent port and its container network."""

    agent_port: int = 7481
    name: str = ""  # default: the hostname
    subnet: str = "10.88.0.0/24"
    bridge: str = "skiff0"



def _read_state(state_dir: Path) -> Running | None:
    try:
        return Running(**json.loads((state_dir / "up.json").read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_healthy(url: str, token: str, pid: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    req = urllib.request.Request(url + "/healthz", headers={"Authorization": f"Bearer {token}"})
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            raise CliError(f"the controller exited during start-up; its log:\n{_log_tail(log)}")
        try:
            with urllib.request.urlopen(req, timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise CliError(f"the controller did not answer at {url} within {timeout:.0f}s; its log:\n"
                   f"{_log_tail(log)}")


def _agent_settings(state_dir: Path, server: str, token: str, node: NodeOptions,  # type: ignore[no-untyped-def]
                    registry: str = ""):
    from agent.settings import AgentSettings

    name = node.name or socket.gethostname()
    return AgentSettings(server=server, token=token, name=name,
                         state_dir=state_dir / "agent", port=node.agent_port,
                         subnet=node.subnet, bridge=node.bridge, nft_table=node.bridge,
                         netns_prefix=f"{node.bridge}-", cgroup_parent=f"skiff/{name}",
                         registry=registry)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _start_registry(state_dir: Path, port: int) -> int:
    addr = f"127.0.0.1:{port}"
    log = state_dir / "logs" / "registry.log"
    try:
        pid = registry_proc.spawn(state_dir / "registry", addr, log)
    except FileNotFoundError:
        raise CliError("docker-registry not found: install it (deploy/setup.sh does)") from None
    try:
        registry_proc.wait_ready(addr, pid, log)
    except RuntimeError as exc:
        stop_pid(pid, timeout=5)
        raise CliError(str(exc)) from None
    return pid


def _start_agent(state_dir: Path, url: str, token: str, node: NodeOptions,
                 log_path: Path, registry: str) -> subprocess.Popen[bytes]:
    import asyncio

    from agent.images.busybox import build_busybox_image
    from agent.images.store import ImageStore

    # The local agent joins like any other node: with the cluster's join token.
    join_token = (state_dir / "controller" / "join.token").read_text().strip()
    settings = _agent_settings(state_dir, url, join_token, node, registry)
    # A fresh machine has no image to run: make busybox from Debian's busybox-static.
    asyncio.run(build_busybox_image(ImageStore(settings.images)))
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "skiff.cli.main", "agent", "--join", url,
             "--token", join_token, "--name", settings.name, "--state-dir",
             str(settings.state_dir), "--port", str(node.agent_port), "--subnet",
             node.subnet, "--bridge", node.bridge, "--registry", registry],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)


def _wait_node(url: str, token: str, node: str, pid: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    req = urllib.request.Request(f"{url}/api/v1/nodes/{node}",
                                 headers={"Authorization": f"Bearer {token}"})
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            raise CliError(f"the agent exited during start-up; its log:\n{_log_tail(log)}")
        try:
            with urllib.request.urlopen(req, timeout=1) as resp:
                if resp.status == 200 and json.loads(resp.read())["status"].get("ready"):
                    return
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    raise CliError(f"node {node} did not register within {timeout:.0f}s; the agent's log:\n"
                   f"{_log_tail(log)}")


def up(state_dir: Path, etcd_port: int, port: int, config_path: Path | None,
       node: NodeOptions | None = None, registry_port: int = 5000) -> str:
    node = node or NodeOptions()
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    logs = state_dir / "logs"
    logs.mkdir(exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    token_file = state_dir / "controller" / "admin.token"
    running = _read_state(state_dir)
    if running and pid_alive(running.etcd_pid) and pid_alive(running.controller_pid) and \
            pid_alive(running.agent_pid) and pid_alive(running.registry_pid):
        token = token_file.read_text().strip()
        write_config(ClientConfig(server=f"http://127.0.0.1:{running.controller_port}",
                                  token=token), config_path)
        return "skiff is already up"
    if running:
        down(state_dir)
    # Before anything starts: a taken port would otherwise fail half-way through.
    if not _port_free(registry_port):
        raise CliError(f"127.0.0.1:{registry_port} is in use already (--registry-port)")

    etcd = start_etcd(state_dir / "etcd", client_port=etcd_port, peer_port=etcd_port + 1,
                      log_path=logs / "etcd.log", detach=True)
    controller_log = logs / "controller.log"
    with open(controller_log, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "skiff.cli.main", "controller",
             "--etcd", f"127.0.0.1:{etcd.port}", "--listen", f"127.0.0.1:{port}",
             "--state-dir", str(state_dir / "controller")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    state = Running(etcd.pid, etcd.port, proc.pid, port)
    (state_dir / "up.json").write_text(json.dumps(asdict(state)))
    deadline = time.monotonic() + 20
    while not token_file.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            down(state_dir)
            raise CliError(f"the controller did not start; its log:\n{_log_tail(controller_log)}")
        time.sleep(0.05)
    token = token_file.read_text().strip()
    try:
        _wait_healthy(url, token, proc.pid, controller_log, timeout=20)
    except CliError:
        down(state_dir)
        raise
    agent_log = logs / "agent.log"
    name = node.name or socket.gethostname()
    registry = f"127.0.0.1:{registry_port}"
    try:
        registry_pid = _start_registry(state_dir, registry_port)
        state = Running(etcd.pid, etcd.port, proc.pid, port, 0, name, node.bridge,
                        node.subnet, registry_pid, registry_port)
        (state_dir / "up.json").write_text(json.dumps(asdict(state)))
        agent = _start_agent(state_dir, url, token, node, agent_log, registry)
        state.agent_pid = agent.pid
        (state_dir / "up.json").write_text(json.dumps(asdict(state)))
        _wait_node(url, token, name, agent.pid, agent_log, timeout=30)
    except (CliError, OSError) as exc:
        down(state_dir)
        raise CliError(str(exc)) from None
    path = write_config(ClientConfig(server=url, token=token), config_path)
    return (f"skiff is up: controller {url}, etcd 127.0.0.1:{etcd.port}, registry "
            f"{registry}, node {name}; CLI config {path}")


def _stop_current_agent(pid_file: Path) -> None:
    """The agent may have been restarted by hand since `up`; its own pid file knows."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if b"skiff" in cmdline and b"agent" in cmdline:
        stop_pid(pid, timeout=10)


def _remove_containers(state_dir: Path, running: Running) -> None:
    """The agent leaves containers running when it stops (a restarted agent adopts
    them); `skiff down` means the whole node stops, so they go too."""
    import asyncio

    from agent.teardown import teardown

    node = NodeOptions(name=running.node, subnet=running.subnet, bridge=running.bridge)
    asyncio.run(teardown(_agent_settings(state_dir, "", "", node)))


def down(state_dir: Path, purge: bool = False) -> str:
    running = _read_state(state_dir)
    if running is None:
        message = "skiff is not running"
    else:
        if running.agent_pid:
            stop_pid(running.agent_pid, timeout=10)
            _stop_current_agent(state_dir / "agent" / "agent.pid")
            _remove_containers(state_dir, running)
        stop_pid(running.controller_pid, timeout=10)
        stop_pid(running.etcd_pid, timeout=10)
        (state_dir / "up.json").unlink(missing_ok=True)
        message = "skiff is down"
    # Also when up.json is gone: a registry is found by its config path, recorded or not.
    for pid in registry_proc.find(state_dir / "registry"):
        stop_pid(pid, timeout=5)
    if purge and state_dir.exists():
        shutil.rmtree(state_dir)
        message += f"; removed {state_dir}"
    return message
