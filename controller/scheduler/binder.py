"""Bind pending tasks to nodes: the simplest rule until the full scheduler lands.

Filter: the node is ready and schedulable. Score: fewest active tasks (spread).
A task that fits nowhere stays pending with a reason that counts, per cause, the
nodes that were rejected, so `skiff describe` answers "why is this not running?".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from skiff.models.objects import Node, Task


@dataclass(frozen=True)
class Binding:
    task: Task
    node: str | None  # None: stays pending
    reason: str  # why not, when node is None


def _rejection(node: Node) -> str | None:
    if not node.status.ready:
        return "not ready"
    if node.spec.unschedulable:
        return "unschedulable"
    return None


def unschedulable_reason(nodes: list[Node]) -> str:
    if not nodes:
        return "0/0 nodes available: no node has joined the cluster"
    causes = Counter(r for n in nodes if (r := _rejection(n)) is not None)
    parts = ", ".join(f"{count} {cause}" for cause, count in sorted(causes.items()))
    return f"0/{len(nodes)} nodes available: {parts}"


def plan_bindings(pending: list[Task], nodes: list[Node], active: list[Task]) -> list[Binding]:
    """Choose a node for each unbound task that should run, in name order."""
    fit = sorted((n for n in nodes if _rejection(n) is None), key=lambda n: n.metadata.name)
    load = Counter(t.spec.node_name for t in active
                   if t.spec.node_name and not t.terminal)
    bindings = []
    reason = "" if fit else unschedulable_reason(nodes)
    for task in sorted(pending, key=lambda t: (t.metadata.app or "", t.metadata.name)):
        if task.spec.node_name or task.spec.desired_state != "running":
            continue
        if not fit:
            bindings.append(Binding(task, None, reason))
            continue
        best = min(fit, key=lambda n: (load[n.metadata.name], n.metadata.name))
        load[best.metadata.name] += 1
        bindings.append(Binding(task, best.metadata.name, ""))
    return bindings
