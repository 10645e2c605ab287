"""Which node builds an image: the same node for the same image name, so the layer cache
of its last build is there (rendezvous hashing over the ready, schedulable nodes with an
agent endpoint). When that node goes, only the builds it owned move. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from skiff.models.objects import Node


class NoBuildNode(LookupError):
    pass


def _eligible(node: Node) -> str | None:
    """Why `node` cannot build now, or None."""
    if not node.status.ready:
        return "not ready"
    if node.spec.unschedulable:
        return "cordoned"
    if not node.status.address or not node.status.agent_port:
        return "no agent endpoint"
    return None


def _repository(image: str) -> str:
    """`todo:1` and `todo:2` share a cache: hash the name without tag or digest."""
    name = image.split("@", 1)[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    return name[:colon] if colon > slash else name


def _weight(node: str, key: str) -> bytes:
    return hashlib.sha256(f"{node}\0{key}".encode()).digest()


def pick_build_node(nodes: Iterable[Node], image: str | None, wanted: str | None = None) -> Node:
    """The node to build `image` on (`wanted` if the user named one). NoBuildNode says
    why none will do."""
    nodes = sorted(nodes, key=lambda n: n.metadata.name)
    if wanted is not None:
        for node in nodes:
            if node.metadata.name == wanted:
                why = _eligible(node)
                if why is not None:
                    raise NoBuildNode(f"node {wanted} cannot build: {why}")
                return node
        raise NoBuildNode(f"no node {wanted}")
    ready = [n for n in nodes if _eligible(n) is None]
    if not ready:
        reasons = ", ".join(f"{n.metadata.name} {_eligible(n)}" for n in nodes) or "none joined"
        raise NoBuildNode(f"no node can build: {reasons}")
    key = _repository(image) if image else ""
    return max(ready, key=lambda n: _weight(n.metadata.name, key))
