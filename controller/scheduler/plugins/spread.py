"""Score: fewer replicas of the same service on the node is better; among equals, fewer
tasks in all (the framework breaks the last ties by node name)."""

from __future__ import annotations

from controller.scheduler.state import SchedulingState
from skiff.models.objects import Node, Task

NAME = "spread"


def score(same_service: int, total: int) -> float:
    # total / (total + 1) < 1: it orders nodes with equal same_service counts only.
    return -(same_service + total / (total + 1))


class Spread:
    name = NAME

    def score(self, task: Task, node: Node, state: SchedulingState) -> float:
        name = node.metadata.name
        same = state.service_count(name, task.metadata.app or "", task.spec.service)
        return score(same, state.task_count(name))
