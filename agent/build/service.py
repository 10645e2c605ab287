"""An agent's build service: one `skiff build` request → the builder → tags → a push of
every tag to the cluster registry, reporting as it goes.

Builds on a node run one at a time: they share the layer cache and the node's two cores,
and a second build only waits (it is told so). A tag with a registry in its name
(`10.0.0.1:5000/app:1`) is pushed there; a bare one (`todo:1`) to the cluster registry,
from which every agent pulls bare names. With no cluster registry the image stays on
this node, and the result says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.build.builder import build
from agent.build.request import BuildRequest
from agent.images.node_images import NodeImages
from agent.images.registry.options import RegistryOptions
from agent.images.registry.push import push
from agent.images.store import ImageStore
from skiff.build.events import BuildEvent

# Everything the service reports, one JSON object each: {"event": BuildEvent},
# {"status": "pushing ..."}, and at the end {"result": {...}} or {"error": {...}}.
Emit = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class BuildOutcome:
    image: str  # the first tag, or the digest of an untagged build
    digest: str
    node: str
    tags: list[str] = field(default_factory=list)
    pushed: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        return {"image": self.image, "digest": self.digest, "node": self.node,
                "tags": self.tags, "pushed": self.pushed, "steps": self.steps,
                "warnings": self.warnings}


class BuildService:
    def __init__(self, *, node: str, store: ImageStore, images: NodeImages | None,
                 registry: str, registry_options: RegistryOptions, work_dir: Path,
                 cgroup_parent: str, runc_binary: str = "runc") -> None:
        self.node = node
        self.store = store
        self.images = images
        self.registry = registry
        self.registry_options = registry_options
        self.work_dir = work_dir
        self.cgroup_parent = cgroup_parent
        self.runc_binary = runc_binary
        self._one_at_a_time = asyncio.Lock()

    def remote_of(self, tag: str) -> str | None:
        """Where `tag` is pushed: its own registry, else the cluster's, else nowhere."""
        if self.images is not None:
            return self.images.remote_of(tag)
        return None

    async def run(self, request: BuildRequest, context_tar: Path, emit: Emit) -> BuildOutcome:
        """Raises skiff.build.BuildError (the Dockerfile, a source, a step) or ImageError
        (a base image, a tag, a push); the caller reports it."""
        if self._one_at_a_time.locked():
            emit({"status": f"waiting for another build on node {self.node}"})
        async with self._one_at_a_time:
            return await self._run(request, context_tar, emit)

    async def _run(self, request: BuildRequest, context_tar: Path,
                   emit: Emit) -> BuildOutcome:
        def progress(event: BuildEvent) -> None:
            emit({"event": event.to_wire()})

        work = self.work_dir
        await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
        result = await build(
            self.store, self.images, context_tar, request.dockerfile,
            dockerfile_name=request.dockerfile_name,
            tag=request.tags[0] if request.tags else None, build_args=request.build_args,
            target=request.target, no_cache=request.no_cache, work_dir=work / "work",
            progress=progress, runc_root=work / "runc", runc_binary=self.runc_binary,
            cgroup_parent=self.cgroup_parent)
        for extra in request.tags[1:]:
            await self.store.tag(result.image.digest, extra)
        pushed = []
        for tag in request.tags:
            remote = self.remote_of(tag)
            if remote is None:
                continue
            emit({"status": f"pushing {remote}"})
            await push(self.store, remote, self.registry_options, source=tag)
            pushed.append(remote)
        steps = [{"stage": s.stage, "step": s.step, "instruction": s.instruction,
                  "line": s.line, "cached": s.cached, "seconds": round(s.seconds, 3)}
                 for s in result.steps]
        image = request.tags[0] if request.tags else result.image.digest
        return BuildOutcome(image, result.image.digest, self.node, list(request.tags), pushed,
                            steps, result.warnings)
