"""Where a task's image comes from on this node: the store, else a registry.

A name that says its registry (`10.0.0.1:5000/todo:1`, `ghcr.io/x/y`) is pulled from
there. A bare name (`todo:1`) is first looked for in the store (images built or imported
here), then pulled from the cluster registry, where `skiff build` pushes; Docker Hub is
never asked for a bare name, since a cluster's images live in its own registry. A pulled
bare name is also tagged under that name, so the next task finds it without a registry
round trip. One pull per image at a time, however many tasks wait for it (ImagePuller).
"""

from __future__ import annotations

import contextlib

from agent.images.errors import ImageError, ImageNotFound
from agent.images.models import Image
from agent.images.refs import parse_ref, split_domain
from agent.images.registry.progress import Progress
from agent.images.registry.puller import ImagePuller
from agent.images.store import ImageStore


class NodeImages:
    def __init__(self, store: ImageStore, puller: ImagePuller, node: str,
                 cluster_registry: str | None = None) -> None:
        self.store = store
        self.puller = puller
        self.node = node
        self.cluster_registry = cluster_registry or None

    def remote_of(self, ref: str) -> str | None:
        """Where `ref` is pulled from; None for a bare name with no cluster registry."""
        domain, _path = split_domain(parse_ref(ref).name)
        if domain is not None:
            return ref
        if self.cluster_registry is None:
            return None
        return f"{self.cluster_registry}/{ref}"

    async def ensure(self, ref: str, progress: Progress | None = None) -> Image:
        """The image for `ref`, pulled if need be; ImageError saying why not."""
        image = await self.store.resolve(ref)
        if image is not None:
            return image
        remote = self.remote_of(ref)
        if remote is None:
            raise ImageNotFound(f"image {ref} is not on node {self.node} and the node knows "
                                "no cluster registry to pull it from; `skiff image import` "
                                "it, or start the agent with --registry")
        image = await self.puller.ensure(remote, progress)
        if remote != ref and parse_ref(ref).digest is None:
            # If tagging fails the pulled image runs all the same; the next task pulls again.
            with contextlib.suppress(ImageError):
                image = await self.store.tag(remote, ref)
        return image
