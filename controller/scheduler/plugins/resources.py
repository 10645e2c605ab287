"""Filter: the node has room for the task's reservations.

What the node's tasks reserve (``deploy.resources.reservations``) plus what this task
reserves must stay within the node's allocatable cpus and memory. Limits do not count:
they cap a container, they do not claim room on the node. A task that reserves nothing
fits anywhere.
"""

from __future__ import annotations

from controller.scheduler.framework import FITS, Status, unschedulable
from controller.scheduler.state import SchedulingState, reservation
from skiff.models.objects import Node, NodeResources, Task

NAME = "resources"
INSUFFICIENT_CPU = "insufficient cpu"
INSUFFICIENT_MEMORY = "insufficient memory"
INSUFFICIENT_BOTH = "insufficient cpu and memory"
_EPSILON = 1e-9  # cpus are fractions: 0.1 + 0.2 must fit in 0.3


def fits(want: tuple[float, int], used: tuple[float, int],
         allocatable: NodeResources) -> Status:
    cpus, memory = want
    short_cpu = cpus > 0 and used[0] + cpus > allocatable.cpus + _EPSILON
    short_memory = memory > 0 and used[1] + memory > allocatable.memory
    if short_cpu and short_memory:
        return unschedulable(INSUFFICIENT_BOTH)
    if short_cpu:
        return unschedulable(INSUFFICIENT_CPU)
    if short_memory:
        return unschedulable(INSUFFICIENT_MEMORY)
    return FITS


class Resources:
    name = NAME

    def filter(self, task: Task, node: Node, state: SchedulingState) -> Status:
        want = reservation(task)
        if want == (0.0, 0):
            return FITS
        return fits(want, state.reserved(node.metadata.name), node.status.allocatable)
