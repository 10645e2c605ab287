"""depends_on, checked across the app: every dependency is a service of the app that
runs (not switched off by a profile), and there is no cycle; the error names the chain."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skiff.manifest.convert import Collector
from skiff.manifest.errors import quote
from skiff.models.appspec import ServiceSpec


def _cycle(services: Mapping[str, ServiceSpec]) -> list[str] | None:
    """One dependency cycle, as the chain of names that closes it, if there is any."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, chain: list[str]) -> list[str] | None:
        state[name] = 1
        for dep in sorted(services[name].depends_on):
            if dep not in services:
                continue
            if state.get(dep) == 1:
                return [*chain[chain.index(dep):], dep] if dep in chain else [name, dep]
            if dep not in state and (found := visit(dep, [*chain, dep])):
                return found
        state[name] = 2
        return None

    for name in sorted(services):
        if name not in state and (found := visit(name, [name])):
            return found
    return None


def check(raw_services: Mapping[str, Any], services: Mapping[str, ServiceSpec],
          c: Collector) -> None:
    for name, spec in services.items():
        for dep in spec.depends_on:
            path = ("services", name, "depends_on", dep)
            if dep == name:
                c.add(path, f"service {quote(name)} depends on itself")
            elif dep not in raw_services:
                c.add(path, f"service {quote(name)} depends on undefined service "
                            f"{quote(dep)}")
            elif dep not in services:
                c.add(path, f"service {quote(name)} depends on {quote(dep)}, which no "
                            "active profile enables")
            elif spec.depends_on[dep] == "service_healthy" and \
                    services[dep].healthcheck is None:
                c.warn(path, f"{dep} has no healthcheck here: unless its image has one, "
                             "service_healthy waits only until it runs")
    cycle = _cycle({n: s for n, s in services.items()
                    if all(d != n for d in s.depends_on)})
    if cycle:
        c.add(("services", cycle[0], "depends_on"),
              "depends_on makes a cycle: " + " -> ".join(cycle))
