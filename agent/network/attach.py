"""A container on several cluster networks: one namespace, a veth and an address per network.

Layout per container id:
  namespace   <netns_dir>/<netns_prefix><id>   (the same path as a single-bridge endpoint)
  veths       <prefix>v<hex> on each network's bridge  <->  eth0, eth1, ... inside, in the
              order the networks are given (the caller sorts them: the first is eth0)
  addresses   <state>/networks/<name>/ipam/<ip> (see overlay.py)
  record      <state>/attachments/<id>.json    (read back to adopt after a restart)

Each container interface has the MAC of its address and the whole network's prefix length,
so every address of the network, on any node, is on-link. The default route goes via the
gateway of the first non-internal network; a container only on internal networks has none.

Blocking, in the node's namespace (the calling thread's); work inside the container's
namespace runs on a fresh thread (netns.run_in_netns).
"""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from agent.network.bridge import link_index
from agent.network.config import NetworkConfig
from agent.network.devices import OVERLAY_MTU
from agent.network.endpoint import check_id
from agent.network.errors import NetworkError
from agent.network.naming import ifname_of, mac_of, veth_name
from agent.network.netns import create_netns, is_netns, remove_netns, run_in_netns
from agent.network.overlay import Overlays
from agent.network.records import load_record, save_record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetworkEndpoint:
    """A container's interface on one network."""
    network: str
    ifname: str  # inside the container: eth0, eth1, ...
    ip: IPv4Interface  # with the whole network's prefix length
    gateway: IPv4Address  # this node's bridge on the network
    mac: str
    host_veth: str

    def to_dict(self) -> dict[str, str]:
        return {"network": self.network, "ifname": self.ifname, "ip": str(self.ip),
                "gateway": str(self.gateway), "mac": self.mac, "host_veth": self.host_veth}

    @classmethod
    def from_dict(cls, raw: dict[str, str]) -> NetworkEndpoint:
        return cls(network=raw["network"], ifname=raw["ifname"], ip=IPv4Interface(raw["ip"]),
                   gateway=IPv4Address(raw["gateway"]), mac=raw["mac"],
                   host_veth=raw["host_veth"])


@dataclass(frozen=True)
class Attachment:
    """All of a container's network endpoints, in interface order."""
    container_id: str
    netns_path: Path
    endpoints: tuple[NetworkEndpoint, ...]

    def to_json(self) -> str:
        return json.dumps({"container_id": self.container_id,
                           "netns_path": str(self.netns_path),
                           "endpoints": [ep.to_dict() for ep in self.endpoints]},
                          indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Attachment:
        raw = json.loads(text)
        return cls(container_id=raw["container_id"], netns_path=Path(raw["netns_path"]),
                   endpoints=tuple(NetworkEndpoint.from_dict(e) for e in raw["endpoints"]))


def default_gateway(cfgs: Sequence[NetworkConfig],
                    endpoints: Sequence[NetworkEndpoint]) -> NetworkEndpoint | None:
    """The endpoint the default route leaves by: the first non-internal network's."""
    return next((ep for cfg, ep in zip(cfgs, endpoints, strict=True) if not cfg.internal),
                None)


def _configure_inside(endpoints: Sequence[NetworkEndpoint],
                      default: NetworkEndpoint | None) -> None:
    """In the container's namespace: lo and every interface up and addressed, the default
    route. Accepts "already done" so a repair can rerun it."""
    with IPRoute() as ipr:
        lo = link_index(ipr, "lo")
        if lo is None:
            raise NetworkError("namespace lacks lo")
        ipr.link("set", index=lo, state="up")
        for ep in endpoints:
            idx = link_index(ipr, ep.ifname)
            if idx is None:
                raise NetworkError(f"namespace lacks {ep.ifname}")
            try:
                ipr.addr("add", index=idx, address=str(ep.ip.ip),
                         prefixlen=ep.ip.network.prefixlen)
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise
            ipr.link("set", index=idx, state="up")
        if default is None:
            return
        # After the links are up: the kernel rejects a gateway not reachable on an up link.
        out = link_index(ipr, default.ifname)
        try:
            ipr.route("add", dst="0.0.0.0/0", gateway=str(default.gateway), oif=out)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise


def _delete_link(ipr: IPRoute, name: str) -> None:
    try:
        ipr.link("del", ifname=name)
    except NetlinkError as exc:
        if exc.code != errno.ENODEV:
            raise


class Attachments:
    """Containers' endpoints on the cluster networks of `overlays`."""

    def __init__(self, state_dir: Path, overlays: Overlays, netns_dir: Path,
                 netns_prefix: str) -> None:
        self.dir = Path(state_dir) / "attachments"
        self.overlays = overlays
        self.netns_dir = Path(netns_dir)
        self.netns_prefix = netns_prefix

    def netns_path(self, container_id: str) -> Path:
        return self.netns_dir / f"{self.netns_prefix}{container_id}"

    def _veth(self, container_id: str, network: str) -> str:
        return veth_name(self.overlays.prefix, container_id, network)

    # ---- records ----------------------------------------------------------------------

    def _record(self, container_id: str) -> Path:
        return self.dir / f"{container_id}.json"

    def load(self, container_id: str) -> Attachment | None:
        return load_record(self._record(container_id), Attachment.from_json, "attachment")

    def _save(self, att: Attachment) -> None:
        save_record(self._record(att.container_id), att.to_json())

    # ---- attach and detach ------------------------------------------------------------

    def _check_ensured(self, cfgs: Sequence[NetworkConfig]) -> None:
        names = [cfg.name for cfg in cfgs]
        if not cfgs or len(set(names)) != len(names):
            raise NetworkError(f"need distinct networks to attach to, got {names}")
        for cfg in cfgs:
            if self.overlays.get(cfg.name) != cfg:
                raise NetworkError(f"network {cfg.name} is not ensured on this node "
                                   "with this configuration")

    def _intact(self, att: Attachment, cfgs: Sequence[NetworkConfig]) -> bool:
        if [ep.network for ep in att.endpoints] != [cfg.name for cfg in cfgs]:
            return False
        if not is_netns(att.netns_path):
            return False
        with IPRoute() as ipr:
            if any(link_index(ipr, ep.host_veth) is None for ep in att.endpoints):
                return False
        return all(self.overlays.ipam(cfg).lookup(att.container_id) == ep.ip
                   for cfg, ep in zip(cfgs, att.endpoints, strict=True))

    def attach(self, container_id: str, cfgs: Sequence[NetworkConfig]) -> Attachment:
        """Put the container on `cfgs` (eth0 on the first). Repeating it returns the same
        endpoints; a failure leaves nothing behind (no veth, namespace, address or record)."""
        check_id(container_id)
        self._check_ensured(cfgs)
        existing = self.load(container_id)
        if existing is not None and self._intact(existing, cfgs):
            return existing
        # Residue of an attach cut short, or another set of networks: start over, keeping
        # the addresses of networks still wanted (allocate is idempotent per owner).
        wanted = {cfg.name for cfg in cfgs}
        self._remove_links_and_netns(container_id, existing)
        for cfg in self.overlays.configs():
            if cfg.name not in wanted:
                self.overlays.ipam(cfg).release(container_id)
        try:
            return self._create(container_id, cfgs)
        except BaseException as exc:
            try:
                self.detach(container_id)
            except Exception as undo:  # report the cause, not the cleanup's trouble
                log.error("rollback of %s incomplete: %s", container_id, undo)
            if isinstance(exc, Exception):  # not KeyboardInterrupt and the like
                raise NetworkError(f"attach {container_id}: {exc}") from exc
            raise

    def _create(self, container_id: str, cfgs: Sequence[NetworkConfig]) -> Attachment:
        endpoints: list[NetworkEndpoint] = []
        for i, cfg in enumerate(cfgs):
            ip = self.overlays.ipam(cfg).allocate(container_id)
            endpoints.append(NetworkEndpoint(
                network=cfg.name, ifname=ifname_of(i), ip=ip, gateway=cfg.gateway.ip,
                mac=mac_of(ip.ip), host_veth=self._veth(container_id, cfg.name)))
        path = self.netns_path(container_id)
        create_netns(path)
        with IPRoute() as ipr:
            for cfg, ep in zip(cfgs, endpoints, strict=True):
                # The peer is born inside the container's namespace under its final name and
                # MAC, so a node-side `eth0` can never clash with it.
                ipr.link("add", ifname=ep.host_veth, kind="veth", mtu=OVERLAY_MTU,
                         peer={"ifname": ep.ifname, "net_ns_fd": str(path),
                               "address": ep.mac, "mtu": OVERLAY_MTU})
                idx = link_index(ipr, ep.host_veth)
                bridge = link_index(ipr, self.overlays.bridge(cfg))
                if idx is None:
                    raise NetworkError(f"veth {ep.host_veth} vanished right after creation")
                if bridge is None:
                    raise NetworkError(f"bridge of network {cfg.name} is missing")
                ipr.link("set", index=idx, master=bridge, state="up")
        run_in_netns(path, _configure_inside, endpoints, default_gateway(cfgs, endpoints))
        att = Attachment(container_id, path, tuple(endpoints))
        self._save(att)
        return att

    def _remove_links_and_netns(self, container_id: str, att: Attachment | None) -> None:
        # Every network's veth name, not only the recorded ones: a crash may have come
        # before the record. Deleting our end deletes the pair.
        names = {self._veth(container_id, n) for n in self.overlays.names()}
        if att is not None:
            names |= {ep.host_veth for ep in att.endpoints}
        with IPRoute() as ipr:
            for name in sorted(names):
                _delete_link(ipr, name)
        remove_netns(self.netns_path(container_id))

    def detach(self, container_id: str) -> None:
        """Remove veths, namespace, addresses and record; each may already be gone."""
        check_id(container_id)
        self._remove_links_and_netns(container_id, self.load(container_id))
        for cfg in self.overlays.configs():
            self.overlays.ipam(cfg).release(container_id)
        self._record(container_id).unlink(missing_ok=True)

    # ---- adoption ---------------------------------------------------------------------

    def _records(self) -> list[Attachment]:
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []
        found = (self.load(n.removesuffix(".json")) for n in names if n.endswith(".json"))
        return [att for att in found if att is not None]

    def list_attachments(self) -> list[Attachment]:
        """Recorded attachments whose namespace still exists (adoption after a restart)."""
        return [att for att in self._records() if is_netns(att.netns_path)]

    def known_ids(self) -> set[str]:
        """Every id that may have left something: a record or an address on a network."""
        ids: set[str] = set()
        for cfg in self.overlays.configs():
            ids |= set(self.overlays.ipam(cfg).allocations().values())
        if self.dir.is_dir():
            ids |= {n.removesuffix(".json") for n in os.listdir(self.dir) if n.endswith(".json")}
        return ids - {""}

    def holders(self, network: str) -> list[str]:
        """Containers whose record names `network`."""
        return sorted(att.container_id for att in self._records()
                      if any(ep.network == network for ep in att.endpoints))
