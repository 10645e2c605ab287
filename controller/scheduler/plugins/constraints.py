"""Filter: every placement constraint of the task holds on the node.

``node.name`` and ``node.hostname`` are both the node's name (an agent registers under
its hostname); ``node.labels.K`` is the node's label K. As in Swarm, ``!=`` holds on a
node that lacks the label, and ``==`` does not.
"""

from __future__ import annotations

from collections.abc import Iterable

from controller.scheduler.framework import FITS, Status, unschedulable
from controller.scheduler.state import SchedulingState
from skiff.models.appspec import Constraint
from skiff.models.objects import Node, Task

NAME = "constraints"


def node_value(attribute: str, node: Node) -> str | None:
    if attribute in ("node.name", "node.hostname"):
        return node.metadata.name
    return node.metadata.labels.get(attribute.removeprefix("node.labels."))


def holds(constraint: Constraint, node: Node) -> bool:
    equal = node_value(constraint.attribute, node) == constraint.value
    return equal if constraint.operator == "==" else not equal


def first_unmet(constraints: Iterable[Constraint], node: Node) -> Constraint | None:
    return next((c for c in constraints if not holds(c, node)), None)


def fits(constraints: Iterable[Constraint], node: Node) -> Status:
    unmet = first_unmet(constraints, node)
    return FITS if unmet is None else unschedulable(f"constraint {unmet}")


class Constraints:
    name = NAME

    def filter(self, task: Task, node: Node, state: SchedulingState) -> Status:
        return fits(task.spec.container.deploy.placement.constraints, node)
