"""A Dockerfile's text → parser directives and logical lines, as Docker reads it.

- Directives (`# syntax=...`, `# escape=...`, `# check=...`) count only at the very top:
  the first line that is not a known directive (a comment, a blank line, an instruction,
  an unknown directive) ends them. Each may appear once.
- A line whose first non-blank character is `#` is a comment, also inside a continuation
  (Docker drops it there and keeps joining). `#` anywhere else is text.
- A line ending with the escape character (then optional blanks) continues on the next.
  Empty or blank continuation lines are skipped (Docker warns about them; so do we).
- The first line of an instruction loses its leading blanks; continuation lines keep theirs,
  and lose only the escape character: `RUN a \\` + `    b` is `RUN a     b`, like Docker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from skiff.build.errors import DockerfileError

KNOWN_DIRECTIVES = ("syntax", "escape", "check")
_DIRECTIVE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
_BOM = "\ufeff"


@dataclass(frozen=True)
class Directives:
    escape: str = "\\"
    syntax: str | None = None  # recorded; skiff has one built-in frontend
    check: str | None = None  # recorded; skiff runs no build checks


@dataclass(frozen=True)
class LogicalLine:
    line: int  # 1-based number of the line the instruction starts on
    text: str  # joined continuation, escape characters removed, right-stripped
    warnings: tuple[str, ...] = field(default=())


def _is_comment(raw: str) -> bool:
    return raw.lstrip(" \t").startswith("#")


def read_directives(lines: list[str], source: str) -> tuple[Directives, int]:
    """The directives at the top and the index of the first line after them."""
    found: dict[str, tuple[int, str]] = {}  # name -> (line number, value)
    index = 0
    while index < len(lines):
        match = _DIRECTIVE.match(lines[index])
        if not match or match.group(1).lower() not in KNOWN_DIRECTIVES:
            break
        name = match.group(1).lower()
        if name in found:
            raise DockerfileError(source, index + 1,
                                  f"only one {name} parser directive can be used")
        found[name] = (index + 1, match.group(2))
        index += 1
    escape_line, escape = found.get("escape", (0, "\\"))
    if escape not in ("\\", "`"):
        raise DockerfileError(source, escape_line,
                              f"invalid escape token {escape!r}: it must be \\ or `")
    syntax = found["syntax"][1] if "syntax" in found else None
    check = found["check"][1] if "check" in found else None
    return Directives(escape=escape, syntax=syntax, check=check), index


def _continues(text: str, escape: str) -> tuple[str, bool]:
    """`text` without a trailing escape (and blanks after it), and whether it continues."""
    stripped = text.rstrip(" \t")
    if stripped.endswith(escape):
        return stripped[:-1], True
    return text, False


def split_lines(text: str) -> list[str]:
    """Physical lines; \\r\\n and \\r endings (Windows-edited files) are line ends too."""
    if text.startswith(_BOM):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def logical_lines(text: str, source: str) -> tuple[Directives, list[LogicalLine]]:
    lines = split_lines(text)
    directives, start = read_directives(lines, source)
    escape = directives.escape
    out: list[LogicalLine] = []
    i = start
    while i < len(lines):
        raw = lines[i]
        i += 1
        first = raw.lstrip(" \t")
        if not first.strip() or _is_comment(first):
            continue
        number = i
        joined, more = _continues(first, escape)
        warnings: list[str] = []
        while more and i < len(lines):
            raw = lines[i]
            i += 1
            if _is_comment(raw):
                continue  # Docker drops comment lines inside a continuation
            if not raw.strip():
                warnings.append(f"line {i}: empty continuation line")
                continue
            piece, more = _continues(raw, escape)
            joined += piece
        out.append(LogicalLine(number, joined.rstrip(), tuple(warnings)))
    return directives, out
