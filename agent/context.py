"""What every task runner on a node shares: the node's name, its parts, its folders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from agent.images.node_images import NodeImages
from agent.images.store import ImageStore
from agent.netsync import ClusterNetworks
from agent.network.node import NodeNetwork
from agent.runtime.container import Runtime
from agent.settings import AgentSettings
from agent.volume_sync import NodeVolumes
from skiff.models.objects import Task, TaskStatus

Reporter = Callable[[Task, TaskStatus], Awaitable[None]]
# (task, reason, message, type): something worth an Event; queued, never waited on.
EventSink = Callable[[Task, str, str, str], None]


@dataclass
class NodeContext:
    node: str
    runtime: Runtime
    images: ImageStore
    network: NodeNetwork
    containers_dir: Path  # <cid>/{rootfs,upper,work,bundle,log.json,exit.json,hosts,...}
    volumes_dir: Path
    cgroup_parent: str
    report: Reporter
    images_source: NodeImages  # the store, else a registry (pull on demand)
    # The cluster networks' follower; None for an agent that runs without them (tests of
    # the single-bridge path), whose containers all go on the node's own bridge.
    cluster: ClusterNetworks | None = None
    vtep: str = ""  # this node's address: where other nodes send its overlay traffic
    # Named volumes' folders and their Volume objects; None: folders only, unreported
    # (tests of a lone agent).
    volumes: NodeVolumes | None = None
    event: EventSink | None = None

    def container_dir(self, cid: str) -> Path:
        return self.containers_dir / cid


def node_network(settings: AgentSettings, node_netns: Path | None = None) -> NodeNetwork:
    """The node's network as this agent's settings lay it out (also for teardown)."""
    state = settings.state_dir
    return NodeNetwork(state / "network", subnet=settings.subnet, bridge=settings.bridge,
                       nft_table=settings.nft_table, netns_prefix=settings.netns_prefix,
                       node_netns=node_netns, ifprefix=settings.ifprefix,
                       vxlan_port=settings.vxlan_port)
