"""The cluster networks this node is on: their records, devices, IPAM, peers and firewall.

State per network, under `<state>/networks/<name>/`:
  config.json   the NetworkConfig last ensured (written first: whatever a crash leaves
                behind, remove and teardown still know the network's devices)
  ipam/         container addresses of the node's slice (ipam.py)

Blocking: the methods act on the calling thread's namespace as the node's and run on a worker
thread inside it (node.NodeNetwork does that).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from agent.network import devices, firewall, peers
from agent.network.bridge import enable_ip_forward, remove_link
from agent.network.config import NetworkConfig, Peer
from agent.network.errors import NetworkError
from agent.network.firewall import Lan
from agent.network.ipam import Ipam
from agent.network.naming import bridge_name, check_network_name, check_prefix, vxlan_name
from agent.network.records import load_record, save_record

log = logging.getLogger(__name__)

CONFIG = "config.json"


class Overlays:
    def __init__(self, state_dir: Path, prefix: str, nft_table: str,
                 vxlan_port: int = devices.VXLAN_PORT, legacy: Lan | None = None) -> None:
        self.dir = Path(state_dir) / "networks"
        self.prefix = check_prefix(prefix)
        self.nft_table = nft_table
        self.vxlan_port = vxlan_port
        # The node's single bridge shares the table; it is in the ruleset while it exists.
        self.legacy = legacy

    # ---- records ----------------------------------------------------------------------

    def _net_dir(self, name: str) -> Path:
        return self.dir / check_network_name(name)

    def get(self, name: str) -> NetworkConfig | None:
        return load_record(self._net_dir(name) / CONFIG, NetworkConfig.from_json, "network")

    def configs(self) -> list[NetworkConfig]:
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []
        return [cfg for name in names if (cfg := self.get(name)) is not None]

    def names(self) -> list[str]:
        """Every network with state here, readable record or not."""
        try:
            return sorted(n for n in os.listdir(self.dir) if (self.dir / n).is_dir())
        except FileNotFoundError:
            return []

    def _save(self, cfg: NetworkConfig) -> None:
        save_record(self._net_dir(cfg.name) / CONFIG, cfg.to_json())

    def ipam(self, cfg: NetworkConfig) -> Ipam:
        return Ipam(self._net_dir(cfg.name) / "ipam", cfg.slice, cfg.subnet.prefixlen)

    def bridge(self, cfg: NetworkConfig) -> str:
        return bridge_name(self.prefix, cfg.vni)

    def vxlan(self, cfg: NetworkConfig) -> str:
        return vxlan_name(self.prefix, cfg.vni)

    # ---- firewall ---------------------------------------------------------------------

    def lans(self, without: str | None = None) -> list[Lan]:
        out: list[Lan] = []
        if self.legacy is not None and devices.link_exists(self.legacy.bridge):
            out.append(self.legacy)
        out += [Lan(self.bridge(cfg), cfg.subnet, cfg.internal) for cfg in self.configs()
                if cfg.name != without]
        return out

    def apply_firewall(self, without: str | None = None) -> None:
        firewall.apply(self.nft_table, self.lans(without))

    # ---- networks ---------------------------------------------------------------------

    def ensure(self, cfg: NetworkConfig) -> None:
        """Bridge, VXLAN port, forwarding and the firewall for `cfg`. Repeatable; a changed
        slice or VTEP is applied (refused while containers hold addresses of the old slice)."""
        for other in self.configs():
            if other.name != cfg.name and other.vni == cfg.vni:
                raise NetworkError(f"network {cfg.name}: VNI {cfg.vni} is already used by "
                                   f"network {other.name} on this node")
        old = self.get(cfg.name)
        if old is not None and old.slice != cfg.slice:
            held = self.ipam(old).allocations()
            if held:
                raise NetworkError(f"network {cfg.name}: slice changed from {old.slice} to "
                                   f"{cfg.slice} while containers hold addresses "
                                   f"({', '.join(sorted(set(held.values())))})")
            self.ipam(old).reset()
        if old is not None and old.vni != cfg.vni:
            # Other device names: the old ones would be orphans.
            self._remove_devices(old)
        self._save(cfg)
        bridge = self.bridge(cfg)
        devices.ensure_network_bridge(bridge, cfg.gateway)
        devices.ensure_vxlan(self.vxlan(cfg), cfg.vni, cfg.vtep, bridge, self.vxlan_port)
        enable_ip_forward()
        self.apply_firewall()

    def _remove_devices(self, cfg: NetworkConfig) -> None:
        remove_link(self.vxlan(cfg))
        remove_link(self.bridge(cfg))

    def holders(self, name: str) -> list[str]:
        """Containers holding an address on the network."""
        cfg = self.get(name)
        if cfg is None:
            return []
        return sorted(set(self.ipam(cfg).allocations().values()) - {""})

    def remove(self, name: str, holders: Iterable[str] = ()) -> None:
        """Devices, firewall rules and state of the network; refused while containers are
        on it (`holders`: those the caller knows of beyond IPAM). Missing is fine."""
        busy = sorted(set(self.holders(name)) | set(holders))
        if busy:
            raise NetworkError(f"network {name} still has containers attached: "
                               f"{', '.join(busy)}")
        cfg = self.get(name)
        if cfg is not None:
            self._remove_devices(cfg)
        self.apply_firewall(without=name)
        # The record goes last: until here a retry still knows what to remove.
        shutil.rmtree(self._net_dir(name), ignore_errors=True)

    def set_peers(self, name: str, wanted: Iterable[Peer]) -> peers.PeerChanges:
        cfg = self.get(name)
        if cfg is None:
            raise NetworkError(f"network {name} is not ensured on this node")
        return peers.sync(self.vxlan(cfg), wanted, cfg.vtep)

    def teardown(self) -> None:
        """Every network's devices and state (containers must be detached already). The
        caller drops the table: its legacy rules may need to go too."""
        for cfg in self.configs():
            self._remove_devices(cfg)
        shutil.rmtree(self.dir, ignore_errors=True)
