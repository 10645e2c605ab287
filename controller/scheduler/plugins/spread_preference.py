"""Score: ``placement.preferences: [{spread: node.labels.K}]`` balances a service's
replicas over the values of label K first (nodes without K form a group of their own),
as Swarm does; with several preferences, each one balances within the groups of the one
before.

The score is the number of the service's replicas in the node's group at each level,
read as the digits of one number (fewest first): base ``replicas + 1`` keeps the levels
apart, since a group never holds more than all replicas.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.scheduler.state import LabelValues, SchedulingState
from skiff.models.objects import Node, Task

NAME = "spread_preference"


def score(group_counts: Sequence[int], replicas: int) -> float:
    """``group_counts[i]``: replicas in the node's group at level i; fewer is better."""
    value = 0
    for count in group_counts:
        value = value * (replicas + 1) + count
    return -float(value)


def node_groups(node: Node, labels: Sequence[str]) -> list[LabelValues]:
    """The node's group at each level: its values of the first 1, 2, ... labels."""
    values = tuple(node.metadata.labels.get(label) for label in labels)
    return [values[:i] for i in range(1, len(labels) + 1)]


class SpreadPreference:
    name = NAME

    def score(self, task: Task, node: Node, state: SchedulingState) -> float:
        preferences = task.spec.container.deploy.placement.preferences
        if not preferences:
            return 0.0
        app, service = task.metadata.app or "", task.spec.service
        labels = tuple(p.label for p in preferences)
        counts = [state.group_counts(app, service, labels[:level + 1])[group]
                  for level, group in enumerate(node_groups(node, labels))]
        replicas = sum(state.group_counts(app, service, labels[:1]).values())
        return score(counts, replicas)
