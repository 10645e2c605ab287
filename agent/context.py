"""What every task runner on a node shares: the node's name, its parts, its folders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from agent.images.store import ImageStore
from agent.network.node import NodeNetwork
from agent.runtime.container import Runtime
from skiff.models.objects import Task, TaskStatus

Reporter = Callable[[Task, TaskStatus], Awaitable[None]]


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

    def container_dir(self, cid: str) -> Path:
        return self.containers_dir / cid
