"""Plugins by name, and the default profile: which run, in which order.

Filters run in profile order (the first that rejects a node names the reason); scores
compare in profile order (the first decides, the next break ties).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from controller.scheduler.framework import Plugin
from controller.scheduler.plugins import (
    constraints,
    dependencies,
    max_per_node,
    ready,
    resources,
    spread,
    spread_preference,
    volume_affinity,
)

Factory = Callable[[], Plugin]

REGISTRY: dict[str, Factory] = {
    dependencies.NAME: dependencies.Dependencies,
    ready.NAME: ready.Ready,
    constraints.NAME: constraints.Constraints,
    volume_affinity.NAME: volume_affinity.VolumeAffinity,
    max_per_node.NAME: max_per_node.MaxPerNode,
    resources.NAME: resources.Resources,
    spread_preference.NAME: spread_preference.SpreadPreference,
    spread.NAME: spread.Spread,
}

DEFAULT_PROFILE: tuple[str, ...] = (
    dependencies.NAME, ready.NAME, constraints.NAME, volume_affinity.NAME, max_per_node.NAME,
    resources.NAME, spread_preference.NAME, spread.NAME,
)


def build(names: Sequence[str] = DEFAULT_PROFILE) -> list[Plugin]:
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown scheduler plugin(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(REGISTRY))}")
    return [REGISTRY[name]() for name in names]
