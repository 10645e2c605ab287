"""``deploy.mode`` and ``deploy.placement``: where a service's tasks may and should go.

Constraints are compose's strings (``node.labels.disk==ssd``), parsed here into
Constraint values; anything skiff cannot evaluate is refused with the list of what it can,
rather than silently matching no node.
"""

from __future__ import annotations

import re
from typing import Any

from skiff.manifest.convert import Collector, to_int
from skiff.manifest.errors import KeyPath, quote
from skiff.models.appspec import Constraint, DeployMode, Placement, Preference

MAX_REPLICAS_PER_NODE = 1000
LABELS = "node.labels."
ATTRIBUTES = ("node.name", "node.hostname")
ALLOWED_ATTRIBUTES = "node.name, node.hostname or node.labels.KEY"
ALLOWED_OPERATORS = "== or !="
_OPERATOR_CHARS = "=!<>~"
_CONSTRAINT = re.compile(rf"\s*([^{_OPERATOR_CHARS}\s]+)\s*([{_OPERATOR_CHARS}]+)\s*(.*?)\s*",
                         re.DOTALL)


def parse_constraint(text: str) -> Constraint:
    """``"node.labels.disk == ssd"`` → Constraint("node.labels.disk", "==", "ssd")."""
    m = _CONSTRAINT.fullmatch(text)
    if m is None:
        raise ValueError(f"constraint {quote(text)} must be ATTRIBUTE==VALUE or "
                         f"ATTRIBUTE!=VALUE, where ATTRIBUTE is {ALLOWED_ATTRIBUTES}")
    attribute, operator, value = m.groups()
    if operator not in ("==", "!="):
        raise ValueError(f"constraint {quote(text)}: unknown operator {quote(operator)} "
                         f"(allowed: {ALLOWED_OPERATORS})")
    if attribute not in ATTRIBUTES and not (attribute.startswith(LABELS)
                                            and len(attribute) > len(LABELS)):
        raise ValueError(f"constraint {quote(text)}: unknown attribute {quote(attribute)} "
                         f"(allowed: {ALLOWED_ATTRIBUTES})")
    if not value:
        raise ValueError(f"constraint {quote(text)} needs a value after {operator}")
    return Constraint(attribute=attribute, operator=operator, value=value)  # type: ignore[arg-type]


def parse_spread(text: str) -> Preference:
    """``"node.labels.zone"`` → Preference(spread="node.labels.zone")."""
    name = text.strip()
    if not name.startswith(LABELS) or len(name) == len(LABELS) or \
            any(ch.isspace() for ch in name):
        raise ValueError(f"spread {quote(text)} must be node.labels.KEY")
    return Preference(spread=name)


def _constraints(raw: list[Any], path: KeyPath, c: Collector) -> list[Constraint]:
    out: list[Constraint] = []
    for i, text in enumerate(raw):
        parsed = c.attempt((*path, i), lambda t=text: parse_constraint(t))
        if parsed is not None and parsed not in out:
            out.append(parsed)
    return out


def _preferences(raw: list[Any], path: KeyPath, c: Collector) -> list[Preference]:
    out: list[Preference] = []
    for i, entry in enumerate(raw):
        parsed = c.attempt((*path, i, "spread"), lambda e=entry: parse_spread(e["spread"]))
        if parsed is not None:
            if parsed in out:
                c.add((*path, i), f"spread over {parsed.spread} is listed twice")
            else:
                out.append(parsed)
    return out


def placement(raw: dict[str, Any], path: KeyPath, c: Collector, mode: DeployMode
              ) -> Placement:
    """``raw`` is the schema-valid ``deploy.placement`` mapping ({} when absent)."""
    if "max_replicas_per_node" in raw and mode == "global":
        c.add((*path, "max_replicas_per_node"),
              "max_replicas_per_node can only be used with mode: replicated "
              "(a global service runs one task per node)")
    return Placement(
        constraints=_constraints(raw.get("constraints") or [], (*path, "constraints"), c),
        preferences=_preferences(raw.get("preferences") or [], (*path, "preferences"), c),
        max_replicas_per_node=c.read(raw, "max_replicas_per_node", path,
                                     lambda v: to_int(v, 1, MAX_REPLICAS_PER_NODE), None),
    )


def compose_constraints(constraints: list[Constraint]) -> list[str]:
    """The compose strings of parsed constraints (what ``to_compose`` prints)."""
    return [str(x) for x in constraints]
