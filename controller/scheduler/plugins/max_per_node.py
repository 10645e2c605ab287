"""Filter: at most ``placement.max_replicas_per_node`` replicas of a service per node."""

from __future__ import annotations

from controller.scheduler.framework import FITS, Status, unschedulable
from controller.scheduler.state import SchedulingState
from skiff.models.objects import Node, Task

NAME = "max_per_node"


def fits(limit: int | None, on_node: int) -> Status:
    if limit is None or on_node < limit:
        return FITS
    return unschedulable(f"max replicas per node ({limit})")


class MaxPerNode:
    name = NAME

    def filter(self, task: Task, node: Node, state: SchedulingState) -> Status:
        limit = task.spec.container.deploy.placement.max_replicas_per_node
        if limit is None:
            return FITS
        count = state.service_count(node.metadata.name, task.metadata.app or "",
                                    task.spec.service)
        return fits(limit, count)
