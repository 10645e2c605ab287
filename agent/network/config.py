"""What the agent is told about a cluster network (NetworkConfig) and its remote addresses
(Peer). Built by the agent from Network.status and Endpoints; see docs/networking.md."""

from __future__ import annotations

import json
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from agent.network.errors import NetworkError
from agent.network.naming import check_network_name, check_vni, mac_of

# Slices below this leave no room: network, gateway, one container, broadcast.
SLICE_PREFIX_MAX = 30


@dataclass(frozen=True)
class NetworkConfig:
    """One cluster network as this node joins it."""
    name: str
    vni: int
    subnet: IPv4Network  # the whole network: containers' prefix length, masquerade match
    slice: IPv4Network  # this node's part: gateway (first host) and container addresses
    internal: bool
    vtep: IPv4Address  # this node's underlay address, the VXLAN source

    def __post_init__(self) -> None:
        check_network_name(self.name)
        check_vni(self.vni)
        if not self.slice.subnet_of(self.subnet):
            raise NetworkError(f"network {self.name}: slice {self.slice} is not inside "
                               f"{self.subnet}")
        if self.slice.prefixlen > SLICE_PREFIX_MAX:
            raise NetworkError(f"network {self.name}: slice {self.slice} is too small")

    @property
    def gateway(self) -> IPv4Interface:
        """The node's bridge address: the slice's first host, with the whole network's
        prefix length."""
        return IPv4Interface(f"{self.slice.network_address + 1}/{self.subnet.prefixlen}")

    def to_json(self) -> str:
        return json.dumps({
            "name": self.name, "vni": self.vni, "subnet": str(self.subnet),
            "slice": str(self.slice), "internal": self.internal, "vtep": str(self.vtep),
        }, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> NetworkConfig:
        raw = json.loads(text)
        return cls(name=raw["name"], vni=int(raw["vni"]), subnet=IPv4Network(raw["subnet"]),
                   slice=IPv4Network(raw["slice"]), internal=bool(raw["internal"]),
                   vtep=IPv4Address(raw["vtep"]))


@dataclass(frozen=True, order=True)
class Peer:
    """An address of the network that lives on another node, and that node's VTEP."""
    ip: IPv4Address
    vtep: IPv4Address

    @property
    def mac(self) -> str:
        return mac_of(self.ip)
