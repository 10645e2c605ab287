"""The `.env` file beside a manifest, read as compose reads it.

``KEY=VALUE`` per line, an optional ``export `` prefix, ``#`` comment lines, and an
unquoted value ends at `` #``. Single quotes are literal; double quotes understand
``\\n``, ``\\t``, ``\\"`` and ``\\\\``. Values are not interpolated (compose does; skiff
keeps .env plain for now). Bad lines are problems with their line, never crashes.
"""

from __future__ import annotations

import re

from skiff.manifest.errors import Problem

_KEY = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=[ \t]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


class _BadLine(ValueError):
    pass


def _double_quoted(text: str) -> tuple[str, str]:
    """The value of ``"..."`` at the start of ``text``, and what follows it."""
    out: list[str] = []
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        if ch == '"':
            return "".join(out), text[i + 1:]
        out.append(ch)
        i += 1
    raise _BadLine("unclosed double quote")


def _value(text: str) -> str:
    if text.startswith("'"):
        end = text.find("'", 1)
        if end < 0:
            raise _BadLine("unclosed single quote")
        value, rest = text[1:end], text[end + 1:]
    elif text.startswith('"'):
        value, rest = _double_quoted(text)
    else:
        return re.split(r"\s#", text, maxsplit=1)[0].strip()
    rest = rest.strip()
    if rest and not rest.startswith("#"):
        raise _BadLine(f"unexpected text after the closing quote: {rest[:20]!r}")
    return value


def parse_dotenv(text: str, source: str) -> tuple[dict[str, str], list[Problem]]:
    """Values by name, and a problem for each line that is not ``KEY=VALUE``."""
    values: dict[str, str] = {}
    problems: list[Problem] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _KEY.match(raw)
        if not match:
            shown = line if len(line) <= 40 else line[:37] + "..."
            problems.append(Problem(source, number, 1, "", f"not KEY=VALUE: {shown!r}"))
            continue
        try:
            values[match.group(1)] = _value(raw[match.end():])
        except _BadLine as exc:
            problems.append(Problem(source, number, match.end() + 1, match.group(1), str(exc)))
    return values, problems
