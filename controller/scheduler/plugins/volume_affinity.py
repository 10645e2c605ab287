"""Pre-filter and filter: a task that uses a named volume goes where the volume is.

A named volume lives on one node: the one its Volume object names (``spec.node``, set by
``skiff volume create --node`` or claimed by the agent that first made its folder).
Until then, its home is the node of the oldest bound task that uses it (``volume_homes``,
built by the scheduler loop), since that task's agent is about to claim it; a volume no
task has used yet goes wherever its first task goes, and later tasks of the same pass
follow (the state records it), so replicas sharing one volume are co-located.

When the home node is not ready, or gone, no node can help: the task stays pending with
``volume data lives on node n1, which is not ready``.
"""

from __future__ import annotations

from collections.abc import Iterable

from controller.scheduler.framework import FITS, Status, unschedulable
from controller.scheduler.state import SchedulingState, VolumeNodes, named_volumes
from skiff.models.objects import Node, Task, Volume

NAME = "volume_affinity"


def volume_homes(tasks: Iterable[Task], volumes: Iterable[Volume] = ()) -> VolumeNodes:
    """volume → node: the Volume objects' nodes, then for the others the node of the
    oldest bound task that uses the volume."""
    homes: VolumeNodes = {v.metadata.name: v.spec.node for v in volumes if v.spec.node}
    bound = [t for t in tasks if t.spec.node_name is not None]
    for task in sorted(bound, key=lambda t: (t.metadata.created_at, t.metadata.name)):
        for volume in named_volumes(task):
            homes.setdefault(volume, task.spec.node_name or "")
    return homes


def homes_of(task: Task, state: SchedulingState) -> list[tuple[str, str]]:
    """(volume, node) for each named volume of ``task`` that already has a home."""
    return [(v, state.volume_nodes[v]) for v in named_volumes(task)
            if v in state.volume_nodes]


def home_usable(volume: str, home: str, nodes: dict[str, Node]) -> Status:
    node = nodes.get(home)
    if node is None:
        return unschedulable(f"volume {volume} lives on node {home}, "
                             "which is no longer in the cluster")
    if not node.status.ready:
        return unschedulable(f"volume {volume} lives on node {home}, which is not ready")
    return FITS


def fits(homes: list[tuple[str, str]], node: str) -> Status:
    for volume, home in homes:
        if home != node:
            return unschedulable(f"volume {volume} lives on node {home}")
    return FITS


class VolumeAffinity:
    name = NAME

    def prefilter(self, task: Task, state: SchedulingState) -> Status:
        for volume, home in homes_of(task, state):
            status = home_usable(volume, home, state.nodes)
            if not status.fits:
                return status
        return FITS

    def filter(self, task: Task, node: Node, state: SchedulingState) -> Status:
        return fits(homes_of(task, state), node.metadata.name)
