"""Problems found in a manifest, each with where it is: file, line, column, key path."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

KeyPath = tuple[str | int, ...]
# Beyond this many, more problems help no one: the rest are counted, not listed.
MAX_PROBLEMS = 100


@dataclass(frozen=True)
class Problem:
    source: str  # file name, "<stdin>" or "<api>"
    line: int | None  # 1-based; None when the document came without positions
    column: int | None
    path: str  # "services.web.ports[1]"; "" for the whole document
    message: str

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}:{self.column}"
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ManifestError(Exception):
    """Everything wrong with one manifest, one problem per line."""

    def __init__(self, problems: list[Problem]) -> None:
        if len(problems) > MAX_PROBLEMS:
            first = problems[0]
            problems = [*problems[:MAX_PROBLEMS],
                        Problem(first.source, None, None, "",
                                f"more problems not shown (limit {MAX_PROBLEMS})")]
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def format_path(parts: KeyPath) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def quote(value: Any, limit: int = 60) -> str:
    """A value as the user wrote it, double-quoted if a string, cut short if long, so a
    message never repeats a whole megabyte back."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int) and value.bit_length() > 160:
        return "a very large number"  # str() of a huge int is slow, or refused past 4300 digits
    if isinstance(value, int | float):
        return repr(value)
    # Lone surrogates (from broken input) are shown escaped, so printing never fails.
    text = json.dumps(str(value), ensure_ascii=False).encode(
        "utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[:limit - 4] + '..."'
