"""What the scheduler knows during one pass: the nodes, and what is placed on each.

Built from the task cache at the start of a pass; ``schedule`` adds each placement it
makes, so the next task sees it. Plugins only read it. Counts are kept as the state is
built, so a filter or score asks in constant time even with thousands of tasks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from skiff.models.objects import Node, Task

# Volume (its cluster name, as task mounts name it) → the node that holds it.
VolumeNodes = dict[str, str]
LabelValues = tuple[str | None, ...]


def named_volumes(task: Task) -> list[str]:
    """The named volumes ``task`` mounts (anonymous ones live and die with it)."""
    out: list[str] = []
    for mount in task.spec.container.volumes:
        if mount.type == "volume" and mount.source and mount.source not in out:
            out.append(mount.source)
    return out


def reservation(task: Task) -> tuple[float, int]:
    """(cpus, memory bytes) that ``task`` reserves; (0, 0) when it reserves nothing."""
    resources = task.spec.container.deploy.resources
    res = resources.reservations if resources else None
    if res is None:
        return 0.0, 0
    return res.cpus or 0.0, res.memory or 0


class SchedulingState:
    def __init__(self, nodes: Iterable[Node], volume_nodes: VolumeNodes | None = None) -> None:
        self.nodes: dict[str, Node] = {
            n.metadata.name: n for n in sorted(nodes, key=lambda n: n.metadata.name)}
        self.volume_nodes: VolumeNodes = dict(volume_nodes or {})
        self._tasks: dict[str, list[Task]] = {}
        self._total: Counter[str] = Counter()
        self._service: Counter[tuple[str, str, str]] = Counter()  # (node, app, service)
        self._cpus: Counter[str] = Counter()
        self._memory: Counter[str] = Counter()
        self._groups: dict[tuple[str, str, tuple[str, ...]], Counter[LabelValues]] = {}
        # (app, service) → (state, exit code, health) of each of its tasks, bound or not,
        # ended or not: what depends_on conditions are judged by.
        self.service_tasks: dict[tuple[str, str],
                                 list[tuple[str, int | None, str | None]]] = {}

    @classmethod
    def build(cls, nodes: Iterable[Node], tasks: Iterable[Task],
              volume_nodes: VolumeNodes | None = None) -> SchedulingState:
        """The state with every bound task that has not ended placed on its node."""
        state = cls(nodes, volume_nodes)
        for task in tasks:
            state.service_tasks.setdefault(
                (task.metadata.app or "", task.spec.service), []).append(
                (task.status.state, task.status.exit_code, task.status.health))
            if task.spec.node_name is not None and not task.terminal:
                state._add(task, task.spec.node_name)
        return state

    def _add(self, task: Task, node: str) -> None:
        self._tasks.setdefault(node, []).append(task)
        self._total[node] += 1
        # A task being stopped still holds its resources, but no longer counts as one of
        # its service's replicas there.
        if task.spec.desired_state == "running":
            self._service[node, task.metadata.app or "", task.spec.service] += 1
        cpus, memory = reservation(task)
        self._cpus[node] += cpus
        self._memory[node] += memory

    def place(self, task: Task, node: str) -> None:
        """Record that this pass put ``task`` on ``node``; the volumes it uses now live
        there too."""
        self._add(task, node)
        self._groups.clear()
        for volume in named_volumes(task):
            self.volume_nodes.setdefault(volume, node)

    def tasks_on(self, node: str) -> list[Task]:
        return list(self._tasks.get(node, ()))

    def task_count(self, node: str) -> int:
        return self._total[node]

    def service_count(self, node: str, app: str, service: str) -> int:
        """Replicas of ``app/service`` that should run on ``node``."""
        return self._service[node, app, service]

    def reserved(self, node: str) -> tuple[float, int]:
        """(cpus, memory bytes) reserved on ``node`` by its tasks."""
        return self._cpus[node], self._memory[node]

    def group_counts(self, app: str, service: str, labels: tuple[str, ...]
                     ) -> Counter[LabelValues]:
        """Replicas of ``app/service`` per combination of the values of node ``labels``
        (None where a node lacks the label), over the nodes of this state."""
        key = (app, service, labels)
        if key not in self._groups:
            counts: Counter[LabelValues] = Counter()
            for name, node in self.nodes.items():
                values = tuple(node.metadata.labels.get(label) for label in labels)
                counts[values] += self._service[name, app, service]
            self._groups[key] = counts
        return self._groups[key]
