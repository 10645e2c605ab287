"""Remove every container an agent made, and its network: for `skiff down` and tests.

Runs without the agent (which may be gone): everything is found on disk and in runc's
state, and every step tolerates what is already missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path

from agent import rootfs
from agent.context import node_network
from agent.network.mesh import RoutingMesh
from agent.network.node import NodeNetwork
from agent.runtime import cgroups
from agent.runtime.container import Runtime
from agent.settings import AgentSettings


def node_parts(settings: AgentSettings, node_netns: Path | None = None
               ) -> tuple[Runtime, NodeNetwork]:
    """``node_netns``: the node's network namespace when it is not the caller's own (a lab
    node, torn down from the root namespace)."""
    state = settings.state_dir
    return Runtime(state / "runc", state / "runtime"), node_network(settings, node_netns)


async def teardown(settings: AgentSettings, grace_seconds: float = 5.0,
                   node_netns: Path | None = None) -> list[str]:
    runtime, network = node_parts(settings, node_netns)
    containers = settings.state_dir / "containers"
    ids = set(await runtime.list_ids())
    with contextlib.suppress(FileNotFoundError):
        ids |= {d.name for d in await asyncio.to_thread(lambda: list(containers.iterdir()))}

    async def one(cid: str) -> None:
        await runtime.stop(cid, grace_seconds=grace_seconds)
        await runtime.remove(cid)
        await rootfs.unmount(containers / cid)
        await network.detach(cid)
        await asyncio.to_thread(shutil.rmtree, containers / cid, True)

    await asyncio.gather(*(one(cid) for cid in sorted(ids)))
    await network.teardown()
    await RoutingMesh(settings.mesh_table, node_netns).remove()
    with contextlib.suppress(OSError):
        await asyncio.to_thread(cgroups.remove, "/" + settings.cgroup_parent)
    await asyncio.to_thread(_remove_empty_parents, settings.cgroup_parent)
    return sorted(ids)


def _remove_empty_parents(parent: str) -> None:
    """``skiff/<node>`` is gone; ``skiff`` goes too unless another node still uses it."""
    parts = parent.strip("/").split("/")
    for depth in range(len(parts) - 1, 0, -1):
        prefix = "/".join(parts[:depth])
        for directory in cgroups.existing_dirs("/" + prefix):
            if str(directory).endswith("/" + prefix):  # that level only, not below it
                with contextlib.suppress(OSError):
                    directory.rmdir()
