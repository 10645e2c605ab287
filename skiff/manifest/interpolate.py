"""Compose variable interpolation in string values.

``$VAR`` and ``${VAR}``; ``${VAR:-default}`` / ``${VAR-default}`` (default when unset or
empty / when unset); ``${VAR:?message}`` / ``${VAR?message}`` (an error); ``${VAR:+alt}``
/ ``${VAR+alt}`` (alt when set); ``$$`` is a literal ``$``. Defaults may themselves hold
interpolations (``${A:-${B}}``). An unset variable without a default becomes "" with a
warning, as in compose.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InterpolationError(ValueError):
    pass


class Interpolator:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.unset: list[str] = []  # variables used without a value or default

    def __call__(self, text: str) -> str:
        out, _pos = self._expand(text, 0, closing=False)
        return out

    def _expand(self, text: str, pos: int, closing: bool) -> tuple[str, int]:
        """Expand from ``pos``; with ``closing``, stop at the ``}`` that ends a default."""
        out: list[str] = []
        while pos < len(text):
            ch = text[pos]
            if closing and ch == "}":
                return "".join(out), pos
            if ch != "$":
                out.append(ch)
                pos += 1
                continue
            nxt = text[pos + 1] if pos + 1 < len(text) else ""
            if nxt == "$":
                out.append("$")
                pos += 2
            elif nxt == "{":
                value, pos = self._braced(text, pos + 2)
                out.append(value)
            elif (m := _NAME.match(text, pos + 1)) is not None:
                out.append(self._lookup(m.group(0)))
                pos = m.end()
            else:
                raise InterpolationError(
                    f"invalid interpolation at {text[pos:pos + 12]!r}; write $$ for a "
                    "literal $")
        if closing:
            raise InterpolationError(f"unclosed ${{ in {text!r}")
        return "".join(out), pos

    def _braced(self, text: str, pos: int) -> tuple[str, int]:
        m = _NAME.match(text, pos)
        if m is None:
            raise InterpolationError(f"invalid variable name in {text!r}")
        name, pos = m.group(0), m.end()
        if pos < len(text) and text[pos] == "}":
            return self._lookup(name), pos + 1
        for op in (":-", ":?", ":+", "-", "?", "+"):
            if text.startswith(op, pos):
                break
        else:
            raise InterpolationError(f"invalid interpolation format for {name!r} in {text!r}")
        arg, end = self._expand(text, pos + len(op), closing=True)
        value = self.environ.get(name)
        empty_counts = op.startswith(":")
        is_set = value is not None and (value != "" or not empty_counts)
        if op in (":-", "-"):
            return (value if is_set else arg) or "", end + 1  # type: ignore[return-value]
        if op in (":+", "+"):
            return (arg if is_set else ""), end + 1
        if not is_set:
            raise InterpolationError(f"required variable {name} is missing a value"
                                     + (f": {arg}" if arg else ""))
        return value or "", end + 1

    def _lookup(self, name: str) -> str:
        value = self.environ.get(name)
        if value is None:
            if name not in self.unset:
                self.unset.append(name)
            return ""
        return value
