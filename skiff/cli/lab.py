"""`skiff lab`: a real multi-node cluster on this machine, one network namespace per node.

Lab NAME on SUBNET (default 10.200.0.0/24, gateway G = its first address):

  root namespace  bridge NAME-br holding G; veth NAME-v<i> per node on it; etcd members on
                  loopback (free ports, in running.json); controllers on G:PORT (and
                  G:PORT+1 with --ha); the registry on G:REGISTRY_PORT
  node i, 1..N    namespace NAME-n<i> (/run/netns) with eth0 = SUBNET's address i+1, lo up,
                  default route via G; its agent (entered with nsenter, network namespace
                  only) serves on eth0:7481, node name NAME-n<i>, bridge and nft table
                  sk-NAME-<i>, containers in 10.88.<i>.0/24, cgroups under skiff/NAME-n<i>
  state dir       layout.json, running.json (pids), logs/, etcd/m<k>/, controllers/c<k>/,
                  registry/, nodes/n<i>/ (each agent's state: images, runc, credentials)

Every process runs detached and mentions the state dir in its command line, so `down`
also finds what a crashed `up` never recorded. Nothing is written outside the state dir,
/run/netns, /run/skiff-lab (name -> state dir) and the nodes' cgroups.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skiff.cli import registry_proc
from skiff.cli.context import EXIT_OK, CliError
from skiff.processes import pid_alive

if TYPE_CHECKING:
    from agent.settings import AgentSettings

INDEX_DIR = Path("/run/skiff-lab")
NETNS_DIR = Path("/run/netns")
STATE_ROOT = Path("/var/lib/skiff-lab")
AGENT_PORT = 7481
MAX_NODES = 50
_NAME = re.compile(r"^[a-z][a-z0-9]{0,8}$")  # sk-NAME-<i> must fit in 15 characters
BINARIES = ("etcd", "docker-registry", "nsenter", "ip", "runc", "nft")


# ---- layout: every name, address and port of a lab, decided once --------------------------


@dataclass(frozen=True)
class Layout:
    name: str
    state_dir: Path
    nodes: int
    subnet: str = "10.200.0.0/24"
    ha: bool = False
    port: int = 7580
    registry_port: int = 5580
    etcd_ports: tuple[tuple[int, int], ...] = ()  # (client, peer) per member

    @property
    def net(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def gateway(self) -> str:
        return str(self.net.network_address + 1)

    @property
    def bridge(self) -> str:
        return f"{self.name}-br"

    @property
    def controller_urls(self) -> list[str]:
        return [f"http://{self.gateway}:{self.port + k}" for k in range(2 if self.ha else 1)]

    @property
    def registry(self) -> str:
        return f"{self.gateway}:{self.registry_port}"

    def node(self, i: int) -> str:
        return f"{self.name}-n{i}"

    def netns(self, i: int) -> Path:
        return NETNS_DIR / self.node(i)

    def veth(self, i: int) -> str:
        return f"{self.name}-v{i}"

    def address(self, i: int) -> str:
        return str(self.net.network_address + 1 + i)

    def node_bridge(self, i: int) -> str:
        return f"sk-{self.name}-{i}"

    def container_range(self, i: int) -> str:
        return f"10.88.{i}.0/24"

    def node_dir(self, i: int) -> Path:
        return self.state_dir / "nodes" / f"n{i}"

    def etcd_endpoint(self, k: int) -> str:
        return f"127.0.0.1:{self.etcd_ports[k][0]}"


def check_layout(layout: Layout) -> None:
    if not _NAME.match(layout.name):
        raise CliError(f"lab name {layout.name!r}: 1-9 lowercase letters and digits, "
                       "starting with a letter")
    if not 1 <= layout.nodes <= MAX_NODES:
        raise CliError(f"--nodes {layout.nodes}: between 1 and {MAX_NODES}")
    try:
        net = ipaddress.IPv4Network(layout.subnet)
    except ValueError as exc:
        raise CliError(f"--subnet {layout.subnet!r}: {exc}") from None
    if net.num_addresses < layout.nodes + 3:
        raise CliError(f"--subnet {layout.subnet} is too small for {layout.nodes} nodes")


def _node_settings(layout: Layout, i: int) -> AgentSettings:
    """The agent settings `skiff agent` derives from the flags the lab passes it."""
    from agent.settings import AgentSettings

    bridge, node = layout.node_bridge(i), layout.node(i)
    return AgentSettings(server="", token="", name=node, state_dir=layout.node_dir(i),
                         address=layout.address(i), port=AGENT_PORT,
                         subnet=layout.container_range(i), bridge=bridge, nft_table=bridge,
                         netns_prefix=f"{bridge}-", cgroup_parent=f"skiff/{node}",
                         registry=layout.registry)


# ---- where a lab's state lives, and its records ------------------------------------------


def state_dir_of(name: str, given: Path | None) -> Path:
    """--state-dir wins; else where `up` last put this lab; else the default."""
    if given is not None:
        return given.resolve()
    with contextlib.suppress(OSError):
        return Path((INDEX_DIR / name).read_text().strip())
    return STATE_ROOT / name


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """One lab command at a time per lab."""
    INDEX_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(INDEX_DIR / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _load_layout(state_dir: Path) -> Layout | None:
    try:
        data = json.loads((state_dir / "layout.json").read_text())
        data["state_dir"] = Path(data["state_dir"])
        data["etcd_ports"] = tuple(tuple(p) for p in data["etcd_ports"])
        return Layout(**data)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _save_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
    os.replace(tmp, path)


@dataclass
class Proc:
    role: str  # etcd, controller, registry, agent
    name: str
    pid: int
    address: str
    log: str


@dataclass
class Running:
    procs: list[Proc] = field(default_factory=list)

    @classmethod
    def load(cls, state_dir: Path) -> Running:
        try:
            data = json.loads((state_dir / "running.json").read_text())
            return cls([Proc(**p) for p in data["procs"]])
        except (OSError, ValueError, TypeError, KeyError):
            return cls()

    def record(self, state_dir: Path, proc: Proc) -> None:
        self.procs = [p for p in self.procs if (p.role, p.name) != (proc.role, proc.name)]
        self.procs.append(proc)
        _save_json(state_dir / "running.json", {"procs": [asdict(p) for p in self.procs]})

    def of(self, role: str) -> list[Proc]:
        return [p for p in self.procs if p.role == role]


# ---- processes ------------------------------------------------------------------------------


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _ours(pid: int, state_dir: Path) -> bool:
    """Alive and one of this lab's: an argument is a path in the state dir (a stale record
    may name a pid that now belongs to something else). Zombies have no command line, so
    they count as gone."""
    prefix = str(state_dir) + "/"
    return pid > 0 and any(arg.startswith(prefix) for arg in _cmdline(pid))



def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:  # the field after "(comm)" is the state, then the parent's pid
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def _strays(state_dir: Path) -> list[int]:
    """Processes of the lab no record names (never this command or what runs it)."""
    mine = _ancestors()
    return [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit() and
            int(d.name) not in mine and _ours(int(d.name), state_dir)]


def _stop(pids: list[int], state_dir: Path, timeout: float = 10.0) -> None:
    """SIGTERM those of ``pids`` that are ours, all at once; SIGKILL what is left after
    ``timeout``."""
    pids = [pid for pid in set(pids) if _ours(pid, state_dir)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if pid_alive(pid) and _ours(pid, state_dir)]
            if pids:
                time.sleep(0.05)
        if not pids:
            return


def _agent_pid(layout: Layout, i: int) -> int:
    """The node's agent as it says itself (it may have been restarted since `up`)."""
    try:
        pid = int((layout.node_dir(i) / "agent.pid").read_text().strip())
    except (OSError, ValueError):
        return 0
    return pid if _ours(pid, layout.state_dir) else 0


def _spawn(argv: list[str], log: Path) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True).pid


def _log_tail(path: Path | str, lines: int = 20) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _poll(what: str, check: Callable[[], bool], timeout: float, procs: list[Proc]) -> None:
    """Poll ``check`` until it holds; fail with the log of a process that died, or of
    every watched process when the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        for p in procs:
            if not pid_alive(p.pid):
                raise CliError(f"{p.role} {p.name} exited while waiting for {what}; "
                               f"its log ({p.log}):\n{_log_tail(p.log)}")
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.role} {p.name} ({p.log}):\n{_log_tail(p.log)}"
                              for p in procs)
            raise CliError(f"timed out after {timeout:.0f}s waiting for {what}\n{tails}")
        time.sleep(0.1)


def _get(url: str, token: str | None = None) -> Any:
    """GET a JSON (or any) answer; None when there is no good one yet."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=2) as resp:
            body = resp.read()
    except (urllib.error.URLError, OSError):
        return None
    try:
        return json.loads(body) if body.strip() else {}
    except ValueError:
        return {}


# ---- network --------------------------------------------------------------------------------


def _ip(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30,
                          check=False)
    if check and proc.returncode != 0:
        raise CliError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def _links() -> dict[str, str]:
    """Root namespace links: name -> operational state."""
    found = {}
    for line in _ip("-br", "link", check=False).splitlines():
        parts = line.split()
        if parts:
            found[parts[0].split("@")[0]] = parts[1] if len(parts) > 1 else ""
    return found


def _check_subnet_free(layout: Layout) -> None:
    for line in _ip("-o", "-4", "addr", "show", check=False).splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[1] == layout.bridge:
            continue
        iface = ipaddress.IPv4Interface(parts[3])
        if iface.network.overlaps(layout.net):
            raise CliError(f"{layout.subnet} overlaps {iface} on {parts[1]}: choose another "
                           "--subnet")


def network_up(layout: Layout) -> None:
    from agent.network.bridge import bridge_mac

    _check_subnet_free(layout)
    links, prefix = _links(), layout.net.prefixlen
    if layout.bridge not in links:
        _ip("link", "add", layout.bridge, "type", "bridge")
        # A fixed MAC: else the bridge takes its lowest port's and the gateway's changes.
        _ip("link", "set", layout.bridge, "address", bridge_mac(layout.bridge))
    _ip("addr", "replace", f"{layout.gateway}/{prefix}", "dev", layout.bridge)
    _ip("link", "set", layout.bridge, "up")
    for i in range(1, layout.nodes + 1):
        ns, veth = layout.node(i), layout.veth(i)
        if not layout.netns(i).exists():
            _ip("netns", "add", ns)
        if veth not in links:
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("link", "set", veth, "master", layout.bridge, "up")
        _ip("-n", ns, "addr", "replace", f"{layout.address(i)}/{prefix}", "dev", "eth0")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "route", "replace", "default", "via", layout.gateway)


def network_down(name: str) -> list[str]:
    """Delete every namespace and link of lab ``name``, whatever `up` got to make; what
    could not be deleted."""
    node_ns = re.compile(rf"^{re.escape(name)}-n\d+$")
    veth = re.compile(rf"^{re.escape(name)}-v\d+$")

    def namespaces() -> list[str]:
        return sorted(p.name for p in NETNS_DIR.iterdir() if node_ns.match(p.name)) \
            if NETNS_DIR.exists() else []

    def links() -> list[str]:
        return [link for link in _links() if veth.match(link) or link == f"{name}-br"]

    for ns in namespaces():
        _ip("netns", "del", ns, check=False)
    for link in links():
        _ip("link", "del", link, check=False)
    return [f"could not delete {what}" for what in namespaces() + links()]


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        # As the servers bind: connections in TIME_WAIT do not make a port busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# ---- the parts of a lab, started in order -----------------------------------------------------


def start_etcd(layout: Layout, running: Running) -> None:
    peers = ",".join(f"m{k}=http://127.0.0.1:{peer}"
                     for k, (_c, peer) in enumerate(layout.etcd_ports))
    for k, (client, peer) in enumerate(layout.etcd_ports):
        data = layout.state_dir / "etcd" / f"m{k}"
        log = layout.state_dir / "logs" / f"etcd-m{k}.log"
        data.mkdir(parents=True, exist_ok=True, mode=0o700)
        pid = _spawn(["etcd", "--name", f"m{k}", "--data-dir", str(data),
                      "--listen-client-urls", f"http://127.0.0.1:{client}",
                      "--advertise-client-urls", f"http://127.0.0.1:{client}",
                      "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                      "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                      "--initial-cluster", peers, "--initial-cluster-state", "new",
                      "--initial-cluster-token", f"skiff-lab-{layout.name}"], log)
        running.record(layout.state_dir, Proc("etcd", f"m{k}", pid, f"127.0.0.1:{client}",
                                              str(log)))
    members = running.of("etcd")

    def healthy() -> bool:
        return all((_get(f"http://{p.address}/health") or {}).get("health") == "true"
                   for p in members)
    _poll("etcd to be healthy", healthy, 30, members)


def _controller_dir(layout: Layout, k: int) -> Path:
    return layout.state_dir / "controllers" / f"c{k}"


def admin_token(layout: Layout) -> str:
    return (_controller_dir(layout, 0) / "admin.token").read_text().strip()


def start_controllers(layout: Layout, running: Running) -> None:
    for k, url in enumerate(layout.controller_urls):
        state = _controller_dir(layout, k)
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        if k > 0:  # tokens are hashed in etcd: every controller hands out the same ones
            for token in ("admin.token", "join.token"):
                if not (state / token).exists():
                    shutil.copy2(_controller_dir(layout, 0) / token, state / token)
        log = layout.state_dir / "logs" / f"controller-c{k}.log"
        # Every member, its own first: a controller outlives the loss of any one.
        members = [layout.etcd_endpoint((k + m) % len(layout.etcd_ports))
                   for m in range(len(layout.etcd_ports))]
        pid = _spawn([sys.executable, "-m", "skiff.cli.main", "controller",
                      "--etcd", ",".join(members),
                      "--listen", url.removeprefix("http://"), "--state-dir", str(state)], log)
        proc = Proc("controller", f"c{k}", pid, url, str(log))
        running.record(layout.state_dir, proc)

        def answers(state: Path = state, url: str = url) -> bool:
            token_file = state / "admin.token"
            token = token_file.read_text().strip() if token_file.exists() else ""
            return bool(token) and (state / "join.token").exists() and \
                _get(url + "/healthz", token) is not None
        _poll(f"controller c{k} at {url}", answers, 30, [proc])


def start_registry(layout: Layout, running: Running) -> None:
    log = layout.state_dir / "logs" / "registry.log"
    pid = registry_proc.spawn(layout.state_dir / "registry", layout.registry, log)
    proc = Proc("registry", "registry", pid, layout.registry, str(log))
    running.record(layout.state_dir, proc)
    _poll(f"the registry at {layout.registry}",
          lambda: registry_proc.answers(layout.registry), 20, [proc])


def build_images(layout: Layout) -> None:
    import asyncio

    from agent.images.busybox import build_busybox_image
    from agent.images.store import ImageStore

    async def build_all() -> None:
        await asyncio.gather(*(build_busybox_image(ImageStore(layout.node_dir(i) / "images"))
                               for i in range(1, layout.nodes + 1)))
    asyncio.run(build_all())


def start_agent(layout: Layout, i: int, running: Running) -> Proc:
    s = _node_settings(layout, i)
    join = (_controller_dir(layout, 0) / "join.token").read_text().strip()
    log = layout.state_dir / "logs" / f"agent-{s.name}.log"
    # Enter only the network namespace: `ip netns exec` would also remount /sys and hide
    # the cgroup mounts runc needs. nsenter execs the agent, so its pid is the agent's.
    pid = _spawn(["nsenter", f"--net={layout.netns(i)}", sys.executable, "-m",
                  "skiff.cli.main", "agent", "--join", ",".join(layout.controller_urls),
                  "--token", join, "--name", s.name, "--state-dir", str(s.state_dir),
                  "--address", s.address, "--port", str(s.port), "--subnet", s.subnet,
                  "--bridge", s.bridge, "--registry", layout.registry], log)
    proc = Proc("agent", s.name, pid, f"{s.address}:{s.port}", str(log))
    running.record(layout.state_dir, proc)
    return proc


def ready_nodes(layout: Layout) -> set[str]:
    """Nodes Ready, as the first controller that answers says."""
    for url in layout.controller_urls:
        answer = _get(url + "/api/v1/nodes", admin_token(layout))
        if answer is not None:
            return {n["metadata"]["name"] for n in answer.get("items", [])
                    if n.get("status", {}).get("ready")}
    return set()


def wait_ready(layout: Layout, indexes: list[int], agents: list[Proc], timeout: float) -> None:
    names = {layout.node(i) for i in indexes}
    _poll(f"node(s) {', '.join(sorted(names))} to be Ready",
          lambda: names <= ready_nodes(layout), timeout, agents)


# ---- up, down, status, node stop/start ------------------------------------------------------


def _new_layout(args: argparse.Namespace, state_dir: Path) -> Layout:
    layout = Layout(args.name, state_dir, args.nodes, args.subnet, args.ha, args.port,
                    args.registry_port)
    check_layout(layout)
    return layout


def _etcd_ports(layout: Layout) -> Layout:
    """Fresh loopback ports for etcd's clients at every start; peer ports too until the
    members have data (which remembers their peer URLs)."""
    from controller.store.etcd_server import free_port

    members = 3 if layout.ha else 1
    has_data = (layout.state_dir / "etcd" / "m0" / "member").exists()
    old_peers = [peer for _client, peer in layout.etcd_ports]
    peers = old_peers if has_data and len(old_peers) == members else \
        [free_port() for _ in range(members)]
    return replace(layout, etcd_ports=tuple((free_port(), peer) for peer in peers))


def _core_alive(layout: Layout, running: Running) -> bool:
    core = [p for p in running.procs if p.role != "agent"]
    return bool(core) and all(_ours(p.pid, layout.state_dir) for p in core)


def up(args: argparse.Namespace, config_path: Path) -> str:
    from skiff.client.config import ClientConfig, write_config

    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        raise CliError(f"missing programs: {', '.join(missing)} (run deploy/setup.sh)")
    if os.geteuid() != 0:
        raise CliError("skiff lab needs root (namespaces, bridges, cgroups)")
    state_dir = state_dir_of(args.name, args.state_dir)
    elsewhere = state_dir_of(args.name, None)
    if elsewhere != state_dir and Running.load(elsewhere).procs:
        raise CliError(f"lab {args.name} runs from {elsewhere} already: names and addresses "
                       "would clash; choose another --name")
    layout = _load_layout(state_dir)
    if layout is None:
        layout = _new_layout(args, state_dir)
    elif (layout.nodes, layout.ha, layout.subnet) != (args.nodes, args.ha, args.subnet):
        raise CliError(f"{state_dir} holds lab {layout.name} with {layout.nodes} nodes, "
                       f"ha={layout.ha}, subnet {layout.subnet}: `skiff lab down --name "
                       f"{layout.name} --purge` first, or use another --state-dir")
    running = Running.load(state_dir)
    if _core_alive(layout, running):
        write_config(ClientConfig(",".join(layout.controller_urls), admin_token(layout)),
                     config_path)
        stopped = [layout.node(i) for i in range(1, layout.nodes + 1)
                   if not _agent_pid(layout, i)]
        return f"lab {layout.name} is already up" + (
            f" (agents stopped: {', '.join(stopped)}; `skiff lab node start`)"
            if stopped else "")
    if running.procs and (problems := _down(layout.name, state_dir)):
        raise CliError(f"lab {layout.name} is partly up and could not be cleared: "
                       f"{'; '.join(problems)}")
    layout = _etcd_ports(layout)
    for sub in ("logs", "nodes", "controllers"):
        (state_dir / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    _save_json(state_dir / "layout.json", asdict(layout))
    INDEX_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    (INDEX_DIR / layout.name).write_text(f"{state_dir}\n")
    try:
        _bring_up(layout, running, args.timeout)
    except BaseException as exc:
        problems = _down(layout.name, state_dir)
        undone = "not all undone: " + "; ".join(problems) if problems else "undone"
        if isinstance(exc, (CliError, OSError)):
            raise CliError(f"lab {layout.name} did not come up ({undone}; logs in "
                           f"{state_dir / 'logs'}): {exc}") from None
        raise
    path = write_config(ClientConfig(",".join(layout.controller_urls), admin_token(layout)),
                        config_path)
    return describe(layout) + f"\nCLI config: {path}"


def _bring_up(layout: Layout, running: Running, timeout: float) -> None:
    network_up(layout)
    busy = [f"{layout.gateway}:{port}" for port in
            [layout.registry_port, *(layout.port + k for k in range(len(layout.controller_urls)))]
            if not _port_free(layout.gateway, port)]
    busy += [f"127.0.0.1:{port}" for pair in layout.etcd_ports for port in pair
             if not _port_free("127.0.0.1", port)]
    if busy:
        raise CliError(f"in use already: {', '.join(busy)} (--port, --registry-port)")
    start_etcd(layout, running)
    start_controllers(layout, running)
    start_registry(layout, running)
    build_images(layout)
    indexes = list(range(1, layout.nodes + 1))
    agents = [start_agent(layout, i, running) for i in indexes]
    wait_ready(layout, indexes, agents, timeout)


def describe(layout: Layout) -> str:
    etcd = ", ".join(layout.etcd_endpoint(k) for k in range(len(layout.etcd_ports)))
    nodes = ", ".join(f"{layout.node(i)} {layout.address(i)}"
                      for i in range(1, layout.nodes + 1))
    return (f"lab {layout.name} is up: controller {', '.join(layout.controller_urls)}; "
            f"etcd {etcd}; registry {layout.registry}\nnodes: {nodes}\n"
            f"state: {layout.state_dir}")


def _node_indexes(name: str, state_dir: Path, layout: Layout | None) -> list[int]:
    """Every node index anything of the lab still has: layout, state dirs, namespaces."""
    found = set(range(1, layout.nodes + 1)) if layout else set()
    with contextlib.suppress(OSError):
        found |= {int(d.name[1:]) for d in (state_dir / "nodes").iterdir()
                  if re.fullmatch(r"n\d+", d.name)}
    with contextlib.suppress(OSError):
        found |= {int(p.name.rsplit("-n", 1)[1]) for p in NETNS_DIR.iterdir()
                  if re.fullmatch(rf"{re.escape(name)}-n\d+", p.name)}
    return sorted(found)


def _teardown_nodes(layout: Layout, indexes: list[int]) -> list[str]:
    """Every node's containers, mounts, container namespaces, bridge, nft table and
    cgroups, in the node's own namespace; the problems, one per node that had any."""
    import asyncio

    from agent.teardown import teardown

    todo = [i for i in indexes if layout.node_dir(i).exists()]

    async def all_nodes() -> list[BaseException | list[str]]:
        return await asyncio.gather(*(teardown(
            _node_settings(layout, i), grace_seconds=1,
            node_netns=layout.netns(i) if layout.netns(i).exists() else None)
            for i in todo), return_exceptions=True)
    return [f"teardown of {layout.node(i)}: {result}"
            for i, result in zip(todo, asyncio.run(all_nodes()), strict=True)
            if isinstance(result, BaseException)]


def _down(name: str, state_dir: Path) -> list[str]:
    """Stop and remove everything of the lab, each step whatever the last one did; the
    problems met on the way."""
    layout = _load_layout(state_dir) or Layout(name, state_dir, 0)
    running = Running.load(state_dir)
    indexes = _node_indexes(name, state_dir, layout)
    # Agents first, so none restarts a container being removed; controllers before etcd,
    # so they shut down cleanly.
    _stop([_agent_pid(layout, i) for i in indexes] + [p.pid for p in running.of("agent")],
          state_dir)
    problems = _teardown_nodes(layout, indexes)
    # No grace needed beyond a few seconds: etcd's log makes even SIGKILL safe for its data.
    _stop([p.pid for p in running.procs if p.role in ("controller", "registry")], state_dir, 5)
    _stop([p.pid for p in running.of("etcd")], state_dir, 5)
    for pid in _strays(state_dir):  # what a crashed `up` started but never recorded
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    problems += network_down(name)
    (state_dir / "running.json").unlink(missing_ok=True)
    return problems


def down(name: str, state_dir: Path, purge: bool) -> str:
    known = (state_dir / "layout.json").exists() or (INDEX_DIR / name).exists()
    problems = _down(name, state_dir)
    if problems:  # keep the state: runc's records are what a second `down` works from
        raise CliError(f"lab {name} is down, but not everything went: "
                       f"{'; '.join(problems)}\n(state kept in {state_dir}; run "
                       "`skiff lab down` again)")
    for path in (INDEX_DIR / name, INDEX_DIR / f"{name}.lock"):
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        INDEX_DIR.rmdir()  # when no other lab is known
    message = f"lab {name} is down" if known else f"lab {name} was not up"
    if purge and state_dir.exists():
        shutil.rmtree(state_dir)
        message += f"; removed {state_dir}"
        with contextlib.suppress(OSError):
            STATE_ROOT.rmdir()  # the default parent, when no other lab keeps state there
    return message


def status(name: str, state_dir: Path) -> int:
    from skiff.cli.output import Table

    layout, running = _load_layout(state_dir), Running.load(state_dir)
    if layout is None or not running.procs:
        raise CliError(f"lab {name} is not up" + (f" (its state: {state_dir})"
                                                   if layout else ""))
    links = _links()
    ready = ready_nodes(layout) if _core_alive(layout, running) else set()
    rows = [[p.role, p.name, str(p.pid), "running" if _ours(p.pid, state_dir) else "stopped",
             p.address, "", ""] for p in running.procs if p.role != "agent"]
    for i in range(1, layout.nodes + 1):
        pid = _agent_pid(layout, i)
        rows.append(["agent", layout.node(i), str(pid or "-"),
                     "running" if pid else "stopped", f"{layout.address(i)}:{AGENT_PORT}",
                     links.get(layout.veth(i), "missing").lower(),
                     "Ready" if layout.node(i) in ready else "NotReady"])
    Table(["ROLE", "NAME", "PID", "STATE", "ADDRESS", "LINK", "NODE"]).print(rows)
    return EXIT_OK


def _index(layout: Layout, node: str) -> int:
    text = node.removeprefix(f"{layout.name}-n")
    if not text.isdigit() or not 1 <= int(text) <= layout.nodes:
        raise CliError(f"no node {node!r} in lab {layout.name} (1..{layout.nodes})")
    return int(text)


def node_stop(layout: Layout, i: int, mode: str) -> str:
    node = layout.node(i)
    if mode == "cut":
        _ip("link", "set", layout.veth(i), "down")
        return f"{node}: link {layout.veth(i)} is down (the node is cut off)"
    pid = _agent_pid(layout, i)
    if not pid:
        return f"{node}: its agent was not running"
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _poll(f"agent {pid} to die", lambda: not _ours(pid, layout.state_dir), 10, [])
    return f"{node}: agent {pid} killed (its containers keep running)"


def node_start(layout: Layout, i: int, timeout: float) -> str:
    done = []
    if _links().get(layout.veth(i), "").upper() == "DOWN":
        _ip("link", "set", layout.veth(i), "up")
        done.append(f"link {layout.veth(i)} up")
    if not _agent_pid(layout, i):
        running = Running.load(layout.state_dir)
        proc = start_agent(layout, i, running)
        # Wait until it wrote its pid file: a second `node stop` must find it.
        _poll("the agent to start", lambda: _agent_pid(layout, i) == proc.pid, 20, [proc])
        done.append(f"agent started (pid {proc.pid})")
    else:
        proc = Proc("agent", layout.node(i), _agent_pid(layout, i), "", "")
    wait_ready(layout, [i], [proc] if proc.log else [], timeout)
    return f"{layout.node(i)}: " + (", ".join(done) or "already running") + "; Ready"


# ---- command line --------------------------------------------------------------------------


def _lab_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default="lab", help="the lab's name (default: lab)")
    p.add_argument("--state-dir", type=Path,
                   help=f"its state (default: where `up` put it, else {STATE_ROOT}/NAME)")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("lab", help="a multi-node cluster on this machine (root)")
    sub = p.add_subparsers(dest="lab_command", metavar="COMMAND")
    sub.required = True
    q = sub.add_parser("up", help="start a lab: network namespaces as nodes, etcd, "
                                  "controller(s), a registry, one agent per node")
    q.add_argument("--nodes", type=int, default=3)
    _lab_flags(q)
    q.add_argument("--ha", action="store_true", help="3 etcd members and 2 controllers")
    q.add_argument("--subnet", default="10.200.0.0/24", help="the nodes' network (the "
                   "first address is the gateway, in the root namespace)")
    q.add_argument("--port", type=int, default=7580, help="controller port on the gateway "
                   "(the second controller: PORT+1)")
    q.add_argument("--registry-port", type=int, default=5580)
    q.add_argument("--timeout", type=float, default=90.0, help="for the nodes to be Ready")
    q.add_argument("--config", help="where to write the CLI config (default: $SKIFF_CONFIG "
                                    "or ~/.config/skiff/config)")
    q = sub.add_parser("down", help="stop a lab and remove everything it made")
    _lab_flags(q)
    q.add_argument("--purge", action="store_true", help="also delete its state dir")
    q = sub.add_parser("status", help="the lab's processes and nodes")
    _lab_flags(q)
    q = sub.add_parser("node", help="cut a node off, or bring it back")
    node_sub = q.add_subparsers(dest="lab_node_command", metavar="COMMAND")
    node_sub.required = True
    r = node_sub.add_parser("stop", help="kill its agent (containers keep running), or cut "
                                         "its link")
    r.add_argument("node", metavar="I|NAME")
    r.add_argument("--mode", choices=("kill-agent", "cut"), default="kill-agent")
    _lab_flags(r)
    r = node_sub.add_parser("start", help="link up and agent running again; waits for Ready")
    r.add_argument("node", metavar="I|NAME")
    r.add_argument("--timeout", type=float, default=60.0)
    _lab_flags(r)


def dispatch(args: argparse.Namespace) -> int:
    from skiff.client.config import default_config_path

    if not _NAME.match(args.name):
        raise CliError(f"lab name {args.name!r}: 1-9 lowercase letters and digits")
    state_dir = state_dir_of(args.name, args.state_dir)
    with _locked(args.name):
        if args.lab_command == "up":
            config = Path(args.config) if args.config else default_config_path()
            print(up(args, config))
        elif args.lab_command == "down":
            print(down(args.name, state_dir, args.purge))
        elif args.lab_command == "status":
            return status(args.name, state_dir)
        else:
            layout = _load_layout(state_dir)
            if layout is None or not Running.load(state_dir).procs:
                raise CliError(f"lab {args.name} is not up")
            i = _index(layout, args.node)
            print(node_stop(layout, i, args.mode) if args.lab_node_command == "stop"
                  else node_start(layout, i, args.timeout))
    return EXIT_OK
