"""Plain column tables, ages, and JSON/YAML dumps for the CLI."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

import yaml


def age(created_at: str | None, now: datetime | None = None) -> str:
    """Kubernetes-style age: 45s, 3m, 2h, 5d."""
    if not created_at:
        return "-"
    try:
        then = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return "?"
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "d" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class Table:
    """Left-aligned columns separated by three spaces, widths fixed by the first rows so
    that rows printed later (``get -w``) line up with the header."""

    def __init__(self, headers: Sequence[str], out: TextIO = sys.stdout) -> None:
        self.headers = list(headers)
        self.widths = [len(h) for h in headers]
        self.out = out
        self.header_printed = False

    def print(self, rows: Sequence[Sequence[str]]) -> None:
        """Print rows, preceded by the header the first time there is something to show."""
        if not rows:
            return
        if not self.header_printed:
            for row in rows:
                self.widths = [max(w, len(c)) for w, c in zip(self.widths, row, strict=False)]
            self._line(self.headers)
            self.header_printed = True
        for row in rows:
            self._line(row)
        self.out.flush()

    def _line(self, cells: Sequence[str]) -> None:
        padded = [c.ljust(w) for c, w in zip(cells, self.widths, strict=False)]
        self.out.write("   ".join(padded).rstrip() + "\n")


def dump(data: Any, fmt: str, out: TextIO = sys.stdout) -> None:
    if fmt == "json":
        out.write(json.dumps(data, indent=2) + "\n")
    else:
        out.write(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))
