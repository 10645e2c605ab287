"""The scheduler's framework: filter, then score, with one small plugin per rule.

For each pending task, in name order: every pre-filter may reject the task as a whole
(its reason is then the task's reason, verbatim); every filter judges each node, the
first that does not fit gives the node's reason; among the nodes that pass, the score
plugins rank: the first score decides, later ones break its ties, then the node name.
A task that fits nowhere stays pending with a reason that counts the nodes per cause:
``0/3 nodes available: 2 insufficient memory, 1 constraint node.labels.disk==ssd``.

Each placement is added to the state before the next task is looked at, so one pass of
six replicas over three nodes spreads 2/2/2. Plugins are pure: they read the task, the
node and the state, and never write.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from controller.scheduler.state import SchedulingState, VolumeNodes, named_volumes
from skiff.models.objects import Node, Task

log = logging.getLogger(__name__)

NO_NODES = "0/0 nodes available: no node has joined the cluster"


class Code(enum.StrEnum):
    FITS = "fits"
    UNSCHEDULABLE = "unschedulable"  # does not fit: a reason for the user
    ERROR = "error"  # a plugin failed: a reason for the operator


@dataclass(frozen=True)
class Status:
    code: Code = Code.FITS
    reason: str = ""  # short, countable: "insufficient memory", "not ready"

    @property
    def fits(self) -> bool:
        return self.code is Code.FITS


FITS = Status()


def unschedulable(reason: str) -> Status:
    return Status(Code.UNSCHEDULABLE, reason)


def error(reason: str) -> Status:
    return Status(Code.ERROR, reason)


@runtime_checkable
class PreFilterPlugin(Protocol):
    """Judges the task once, before any node: for reasons no node can change."""

    name: str

    def prefilter(self, task: Task, state: SchedulingState) -> Status: ...


@runtime_checkable
class FilterPlugin(Protocol):
    """Can ``task`` run on ``node``?"""

    name: str

    def filter(self, task: Task, node: Node, state: SchedulingState) -> Status: ...


@runtime_checkable
class ScorePlugin(Protocol):
    """How good is ``node`` for ``task`` (higher is better), among nodes that fit."""

    name: str

    def score(self, task: Task, node: Node, state: SchedulingState) -> float: ...


Plugin = PreFilterPlugin | FilterPlugin | ScorePlugin

__all__ = ["FITS", "Binding", "Code", "FilterPlugin", "Plugin", "PreFilterPlugin", "Profile",
           "SchedulingState", "ScorePlugin", "Status", "VolumeNodes", "error", "schedule",
           "schedule_on", "unschedulable", "unschedulable_reason", "wants_node"]


@dataclass(frozen=True)
class Binding:
    task: Task
    node: str | None  # None: stays pending
    reason: str  # why not, when node is None


def unschedulable_reason(total: int, causes: Counter[str]) -> str:
    """``0/3 nodes available: 2 insufficient memory, 1 not ready`` (most common first)."""
    if total == 0:
        return NO_NODES
    parts = ", ".join(f"{count} {cause}" for cause, count in
                      sorted(causes.items(), key=lambda item: (-item[1], item[0])))
    return f"0/{total} nodes available: {parts}"


def _failed(plugin: Plugin, exc: Exception) -> Status:
    """A plugin that raises answers Error, so one bug cannot stop all scheduling."""
    log.error("scheduler plugin %s failed", plugin.name, exc_info=exc)
    return error(f"error in {plugin.name}: {exc}")


def _score(plugin: ScorePlugin, task: Task, node: Node, state: SchedulingState) -> float:
    try:
        return plugin.score(task, node, state)
    except Exception:
        log.exception("scheduler plugin %s failed", plugin.name)
        return 0.0


@dataclass(frozen=True)
class Profile:
    """Plugins sorted by extension point, each list in the order given."""

    prefilters: tuple[PreFilterPlugin, ...]
    filters: tuple[FilterPlugin, ...]
    scores: tuple[ScorePlugin, ...]

    @classmethod
    def of(cls, plugins: Sequence[Plugin]) -> Profile:
        return cls(tuple(p for p in plugins if isinstance(p, PreFilterPlugin)),
                   tuple(p for p in plugins if isinstance(p, FilterPlugin)),
                   tuple(p for p in plugins if isinstance(p, ScorePlugin)))

    def prefilter(self, task: Task, state: SchedulingState) -> Status:
        for plugin in self.prefilters:
            try:
                status = plugin.prefilter(task, state)
            except Exception as exc:
                status = _failed(plugin, exc)
            if not status.fits:
                return status
        return FITS

    def filter(self, task: Task, node: Node, state: SchedulingState) -> Status:
        for plugin in self.filters:
            try:
                status = plugin.filter(task, node, state)
            except Exception as exc:
                status = _failed(plugin, exc)
            if not status.fits:
                return status
        return FITS

    def best(self, task: Task, nodes: list[Node], state: SchedulingState) -> Node:
        def key(node: Node) -> tuple[tuple[float, ...], str]:
            return (tuple(-_score(s, task, node, state) for s in self.scores),
                    node.metadata.name)
        return min(nodes, key=key)


def wants_node(task: Task) -> bool:
    """An unbound task that should run and that the scheduler places (a global
    service's tasks are made already bound by the service reconciler)."""
    return (task.spec.node_name is None and task.spec.desired_state == "running"
            and task.spec.container.deploy.mode == "replicated")


def _group(task: Task) -> tuple[object, ...] | None:
    """Tasks that are alike for every plugin share filter and score results on a node
    until something is placed there; None for tasks whose answers depend on more than
    their node (named volumes pin to other nodes; preferences weigh every node)."""
    spec = task.spec.container
    if named_volumes(task) or spec.deploy.placement.preferences:
        return None
    return (task.metadata.app, task.spec.service, task.spec.spec_hash,
            repr(spec.deploy.placement), repr(spec.deploy.resources))


def schedule_on(pending: Sequence[Task], state: SchedulingState,
                plugins: Sequence[Plugin]) -> list[Binding]:
    """Bind each task of ``pending`` that wants a node, in (app, name) order; ``state``
    takes every placement made.

    Every plugin's answer for a node depends only on what is placed on that node (and
    for grouped tasks, see _group, on nothing else), so answers are kept per (group,
    node) and a node's are dropped when a task is placed on it: ten thousand replicas of
    a few services cost a few full passes over the nodes, not ten thousand.
    """
    profile = Profile.of(plugins)
    bindings: list[Binding] = []
    version: Counter[str] = Counter()  # placements per node in this pass
    answers: dict[tuple[object, str], tuple[int, Status, tuple[float, ...]]] = {}

    def judge(task: Task, group: tuple[object, ...] | None,
              node: Node) -> tuple[Status, tuple[float, ...]]:
        name = node.metadata.name
        if group is not None:
            cached = answers.get((group, name))
            if cached is not None and cached[0] == version[name]:
                return cached[1], cached[2]
        status = profile.filter(task, node, state)
        scores = tuple(-_score(s, task, node, state) for s in profile.scores) \
            if status.fits else ()
        if group is not None:
            answers[group, name] = (version[name], status, scores)
        return status, scores

    for task in sorted(pending, key=lambda t: (t.metadata.app or "", t.metadata.name)):
        if not wants_node(task):
            continue
        pre = profile.prefilter(task, state)
        if not pre.fits:
            bindings.append(Binding(task, None, pre.reason))
            continue
        group = _group(task)
        best: tuple[tuple[float, ...], str] | None = None
        causes: Counter[str] = Counter()
        for node in state.nodes.values():
            status, scores = judge(task, group, node)
            if not status.fits:
                causes[status.reason] += 1
            elif best is None or (scores, node.metadata.name) < best:
                best = (scores, node.metadata.name)
        if best is None:
            bindings.append(Binding(task, None, unschedulable_reason(len(state.nodes), causes)))
            continue
        chosen = best[1]
        state.place(task, chosen)
        version[chosen] += 1
        bindings.append(Binding(task, chosen, ""))
    return bindings


def schedule(pending: Sequence[Task], nodes: Sequence[Node], active: Sequence[Task],
             plugins: Sequence[Plugin],
             volume_nodes: VolumeNodes | None = None) -> list[Binding]:
    """Bindings for ``pending`` over ``nodes``, given the ``active`` tasks already placed
    (any tasks may be passed: unbound and ended ones are left out)."""
    state = SchedulingState.build(nodes, active, volume_nodes)
    return schedule_on(pending, state, plugins)
