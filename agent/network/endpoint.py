"""A container's network endpoint: its namespace, a veth pair and an address.

Layout per container id, with the node's configured prefix and directories:
  namespace   <netns_dir>/<prefix><id>     (default /run/netns/skiff-<id>, an nsfs bind
                                            mount; `ip -n skiff-<id> addr` shows it)
  veth        vsk<12 hex> on the node's bridge  <->  eth0 inside the namespace
  address     <state>/ipam/<ip>            (see ipam.py)
  record      <state>/endpoints/<id>.json  (read back to adopt endpoints after a restart)

Blocking code: the methods act on the calling thread's namespace as the node's namespace and
must run on a worker thread already inside it (node.NodeNetwork does that). Inside the
container's namespace, work runs on a fresh thread (netns.run_in_netns).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from agent.network.bridge import link_index, remove_link
from agent.network.errors import NetworkError
from agent.network.ipam import Ipam
from agent.network.netns import create_netns, is_netns, remove_netns, run_in_netns
from agent.network.records import load_record, save_record

log = logging.getLogger(__name__)

CONTAINER_IFNAME = "eth0"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Endpoint:
    container_id: str
    netns_path: Path
    ip: IPv4Interface
    gateway: IPv4Address
    host_veth: str
    mac: str

    def to_json(self) -> str:
        return json.dumps({
            "container_id": self.container_id, "netns_path": str(self.netns_path),
            "ip": str(self.ip), "gateway": str(self.gateway), "host_veth": self.host_veth,
            "mac": self.mac,
        }, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Endpoint:
        raw = json.loads(text)
        return cls(container_id=raw["container_id"], netns_path=Path(raw["netns_path"]),
                   ip=IPv4Interface(raw["ip"]), gateway=IPv4Address(raw["gateway"]),
                   host_veth=raw["host_veth"], mac=raw["mac"])


def check_id(container_id: str) -> str:
    # Used in file and namespace names: no slashes, no dot-dot, bounded length.
    if not _ID.match(container_id):
        raise NetworkError(f"invalid container id {container_id!r}")
    return container_id


def host_veth_name(prefix: str, container_id: str) -> str:
    """`vsk` + 12 hex digits: within IFNAMSIZ, deterministic (detach after a restart finds
    it), and different for two nodes (prefixes) that share a namespace and a container id."""
    digest = hashlib.sha256(f"{prefix}\0{container_id}".encode()).hexdigest()
    return "vsk" + digest[:12]


def _configure_inside(ip: IPv4Interface, gateway: IPv4Address) -> str:
    """In the container's namespace: lo up, eth0 addressed and up, default route via the
    gateway. Accepts "already done" so a repair can rerun it. Returns eth0's MAC."""
    with IPRoute() as ipr:
        lo = link_index(ipr, "lo")
        eth = link_index(ipr, CONTAINER_IFNAME)
        if lo is None or eth is None:
            raise NetworkError(f"namespace lacks lo or {CONTAINER_IFNAME}")
        ipr.link("set", index=lo, state="up")
        try:
            ipr.addr("add", index=eth, address=str(ip.ip), prefixlen=ip.network.prefixlen)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
        # Up before the route: the kernel rejects a gateway not reachable on an up link.
        ipr.link("set", index=eth, state="up")
        try:
            ipr.route("add", dst="0.0.0.0/0", gateway=str(gateway), oif=eth)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
        return str(ipr.get_links(eth)[0].get_attr("IFLA_ADDRESS"))


class Endpoints:
    """Endpoints of one node network: bridge `bridge`, addresses from `ipam`."""

    def __init__(self, state_dir: Path, ipam: Ipam, bridge: str, netns_dir: Path,
                 netns_prefix: str) -> None:
        self.dir = Path(state_dir) / "endpoints"
        self.ipam = ipam
        self.bridge = bridge
        self.netns_dir = Path(netns_dir)
        self.prefix = netns_prefix

    def netns_path(self, container_id: str) -> Path:
        return self.netns_dir / f"{self.prefix}{container_id}"

    def _record(self, container_id: str) -> Path:
        return self.dir / f"{container_id}.json"

    def _load(self, container_id: str) -> Endpoint | None:
        return load_record(self._record(container_id), Endpoint.from_json, "endpoint")

    def _save(self, ep: Endpoint) -> None:
        save_record(self._record(ep.container_id), ep.to_json())

    def _intact(self, ep: Endpoint) -> bool:
        with IPRoute() as ipr:
            has_veth = link_index(ipr, ep.host_veth) is not None
        return (has_veth and is_netns(ep.netns_path)
                and self.ipam.lookup(ep.container_id) == ep.ip)

    def _remove_links_and_netns(self, container_id: str) -> None:
        # Deleting our end deletes the pair, even while a container still holds its netns.
        remove_link(host_veth_name(self.prefix, container_id))
        remove_netns(self.netns_path(container_id))

    def attach(self, container_id: str) -> Endpoint:
        """Give the container a namespace on the bridge. Repeating it returns the same
        endpoint; a failure leaves nothing behind (no veth, namespace or address)."""
        check_id(container_id)
        existing = self._load(container_id)
        if existing is not None and self._intact(existing):
            return existing
        # Residue of an attach cut short (agent crash): start over, keeping the address
        # (allocate is idempotent per owner).
        self._remove_links_and_netns(container_id)
        try:
            return self._create(container_id)
        except BaseException as exc:
            try:
                self.detach(container_id)
            except Exception as undo:  # report the cause, not the cleanup's trouble
                log.error("rollback of %s incomplete: %s", container_id, undo)
            if isinstance(exc, Exception):  # not KeyboardInterrupt and the like
                raise NetworkError(f"attach {container_id}: {exc}") from exc
            raise

    def _create(self, container_id: str) -> Endpoint:
        ip = self.ipam.allocate(container_id)
        gateway = self.ipam.gateway.ip
        path = self.netns_path(container_id)
        create_netns(path)
        veth = host_veth_name(self.prefix, container_id)
        with IPRoute() as ipr:
            # The peer is born inside the container's namespace under its final name, so a
            # node-side `eth0` (a lab node has one) can never clash with it.
            ipr.link("add", ifname=veth, kind="veth",
                     peer={"ifname": CONTAINER_IFNAME, "net_ns_fd": str(path)})
            idx = link_index(ipr, veth)
            bridge = link_index(ipr, self.bridge)
            if idx is None:
                raise NetworkError(f"veth {veth} vanished right after creation")
            if bridge is None:
                raise NetworkError(f"bridge {self.bridge} is missing (ensure() not run?)")
            ipr.link("set", index=idx, master=bridge, state="up")
        mac = run_in_netns(path, _configure_inside, ip, gateway)
        ep = Endpoint(container_id, path, ip, gateway, veth, mac)
        self._save(ep)
        return ep

    def detach(self, container_id: str) -> None:
        """Remove veth, namespace, address and record; each may already be gone."""
        check_id(container_id)
        self._remove_links_and_netns(container_id)
        self.ipam.release(container_id)
        self._record(container_id).unlink(missing_ok=True)

    def list_endpoints(self) -> list[Endpoint]:
        """Recorded endpoints whose namespace still exists (adoption after a restart)."""
        out: list[Endpoint] = []
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return out
        for name in names:
            if name.endswith(".json"):
                ep = self._load(name.removesuffix(".json"))
                if ep is not None and is_netns(ep.netns_path):
                    out.append(ep)
        return out

    def known_ids(self) -> set[str]:
        """Every id that may have left something: a record or an address. (Namespaces
        are created only after the address, and removed before it is released.)"""
        ids = set(self.ipam.allocations().values()) - {""}
        if self.dir.is_dir():
            ids |= {n.removesuffix(".json") for n in os.listdir(self.dir) if n.endswith(".json")}
        return ids
