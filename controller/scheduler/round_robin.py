"""The simplest placement there is: ready nodes in turn, no rules, no scores.

Not for use: the baseline that bench/schedule.py measures the real scheduler against.
"""

from __future__ import annotations

from controller.scheduler.framework import Binding
from skiff.models.objects import Node, Task


def round_robin(pending: list[Task], nodes: list[Node], start: int = 0
                ) -> tuple[list[Binding], int]:
    """Bindings, and where the next pass should continue the rotation."""
    ready = sorted(n.metadata.name for n in nodes
                    if n.status.ready and not n.spec.unschedulable)
    if not ready:
        return [Binding(t, None, "no ready node") for t in pending], start
    out = []
    for i, task in enumerate(pending):
        out.append(Binding(task, ready[(start + i) % len(ready)], ""))
    return out, start + len(pending)
