"""How one agent is set up: who it is, where the controller is, where its state lives."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class AgentSettings:
    server: str
    token: str
    name: str = field(default_factory=socket.gethostname)
    state_dir: Path = Path("/var/lib/skiff/agent")
    address: str = "127.0.0.1"  # where the controller reaches this agent
    port: int = 7481
    labels: dict[str, str] = field(default_factory=dict)
    subnet: str = "10.88.0.0/24"  # this node's container addresses
    bridge: str = "skiff0"
    nft_table: str = "skiff"
    netns_prefix: str = "skiff-"
    # Cluster networks: their bridges and VXLAN devices are named <ifprefix>b<vni>,
    # <ifprefix>x<vni>; the routing mesh has its own nft table; the DNS server listens on
    # each network's gateway address.
    ifprefix: str = "sk"
    vxlan_port: int = 4789
    dns_port: int = 53
    # The cluster registry (host:port, plain HTTP): where bare image names are pulled
    # from and `skiff build` pushes. Empty: only images already in the node's store.
    registry: str = ""
    cgroup_parent: str = "skiff"
    images_dir: Path | None = None  # default: <state_dir>/images
    # The OCI runtime binary: runc by default; crun works where cgroups are not hybrid
    # (crun 1.8 refuses hybrid hierarchies, which Debian 12 hosts often have).
    oci_runtime: str = "runc"
    heartbeat_seconds: float = 5.0
    # Image GC (agent/images/gc_plan.py): pulled images no task used for this long are
    # removed; 0 turns it off.
    image_gc_unused_for: float = 3600.0
    image_gc_interval: float = 300.0
    resync_seconds: float = 30.0

    @property
    def mesh_table(self) -> str:
        return f"{self.nft_table}-mesh"

    @property
    def images(self) -> Path:
        return self.images_dir or self.state_dir / "images"
