"""Node lifecycle as a pure plan: silent nodes go Down, and their tasks are lost.

A node whose last heartbeat is older than the grace period is marked not ready. Each task
bound to a node that is down (or gone) and still meant to run is marked lost: desired
state shutdown, observed state ``orphaned``. The service reconciler then sees an empty
slot and makes a replacement, which the scheduler puts elsewhere. If the node comes
back, its agent sees the lost tasks' desired state (or their absence) and stops them, so
no service settles above its replica count.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime

from skiff.models.objects import Node, Task

DEFAULT_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class NodePlan:
    down: list[Node] = field(default_factory=list)  # to write with ready=False
    lost: list[Task] = field(default_factory=list)  # to write as orphaned / shutdown

    @property
    def empty(self) -> bool:
        return not (self.down or self.lost)


def _parse(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None


def silence(node: Node, now: datetime) -> float | None:
    """Seconds since the node's last heartbeat (None: it never sent one)."""
    last = _parse(node.status.last_heartbeat)
    return None if last is None else (now - last).total_seconds()


def plan_nodes(nodes: list[Node], tasks: list[Task], now: datetime,
               grace: float = DEFAULT_GRACE_SECONDS) -> NodePlan:
    down: list[Node] = []
    gone_or_down = set()
    known = {n.metadata.name for n in nodes}
    for node in nodes:
        quiet = silence(node, now)
        if node.status.ready and (quiet is None or quiet > grace):
            heard = "never" if quiet is None else f"{quiet:.0f}s ago"
            status = dataclasses.replace(
                node.status, ready=False,
                message=f"Down: no heartbeat within {grace:g}s (last heard {heard})")
            down.append(dataclasses.replace(node, status=status))
            gone_or_down.add(node.metadata.name)
        elif not node.status.ready:
            gone_or_down.add(node.metadata.name)
    lost = []
    for task in tasks:
        where = task.spec.node_name
        if where is None or task.spec.desired_state != "running":
            continue
        if where in gone_or_down or where not in known:
            why = "is down" if where in known else "was removed"
            spec = dataclasses.replace(task.spec, desired_state="shutdown")
            status = dataclasses.replace(task.status, state="orphaned",
                                         message=f"lost: node {where} {why}")
            lost.append(dataclasses.replace(task, spec=spec, status=status))
    return NodePlan(down, lost)
