"""Field-level differences between two JSON-ready values, for apply and --dry-run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldChange:
    path: str  # "deploy.replicas", "ports[0].published"
    old: Any  # None when added
    new: Any  # None when removed

    def __str__(self) -> str:
        if self.old is None:
            return f"{self.path}: + {_show(self.new)}"
        if self.new is None:
            return f"{self.path}: - {_show(self.old)}"
        return f"{self.path}: {_show(self.old)} -> {_show(self.new)}"


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            _flatten(sub, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list) and value:
        for i, sub in enumerate(value):
            _flatten(sub, f"{prefix}[{i}]", out)
    elif value not in ({}, [], None, False, ""):
        # Empty values and defaults read as absent, so {} -> {"a": 1} shows one addition.
        out[prefix] = value


def diff(old: Any, new: Any) -> list[FieldChange]:
    """Leaf-level changes from ``old`` to ``new`` in path order."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    _flatten(old, "", before)
    _flatten(new, "", after)
    changes = []
    for path in sorted(before.keys() | after.keys()):
        a, b = before.get(path), after.get(path)
        if a != b:
            changes.append(FieldChange(path, a, b))
    return changes
