"""Filter: only ready nodes that take new tasks (not cordoned, not draining)."""

from __future__ import annotations

from controller.scheduler.framework import FITS, Status, unschedulable
from controller.scheduler.state import SchedulingState
from skiff.models.objects import Node, Task

NAME = "ready"
NOT_READY = "not ready"
DRAINING = "draining"
UNSCHEDULABLE = "unschedulable"


def fits(node: Node) -> Status:
    if not node.status.ready:
        return unschedulable(NOT_READY)
    if node.spec.drain:
        return unschedulable(DRAINING)
    if node.spec.unschedulable:
        return unschedulable(UNSCHEDULABLE)
    return FITS


class Ready:
    name = NAME

    def filter(self, task: Task, node: Node, state: SchedulingState) -> Status:
        return fits(node)
