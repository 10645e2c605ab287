"""Compose variable interpolation in string values.

``$VAR`` and ``${VAR}``; ``${VAR:-default}`` / ``${VAR-default}`` (default when unset or
empty / when unset); ``${VAR:?message}`` / ``${VAR?message}`` (an error when unset or
empty / when unset); ``${VAR:+alt}`` / ``${VAR+alt}`` (alt when set and non-empty / when
set); ``$$`` is a literal ``$``. Defaults may themselves hold interpolations
(``${A:-${B:-x}}``); like a shell, a default is only expanded when it is used, so an
unused ``${B:?}`` inside it is no error. An unset variable without a default becomes ""
with a warning, as in compose.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class InterpolationError(ValueError):
    pass


class Interpolator:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.unset: list[str] = []  # variables used without a value or default, in order

    def __call__(self, text: str) -> str:
        out, _pos = self._expand(text, 0, closing=False, live=True)
        return out

    def _expand(self, text: str, pos: int, closing: bool, live: bool) -> tuple[str, int]:
        """Expand from ``pos``; with ``closing``, stop at the ``}`` that ends a default.
        When not ``live`` the text is only parsed (a default that is not used)."""
        out: list[str] = []
        while pos < len(text):
            ch = text[pos]
            if closing and ch == "}":
                return "".join(out), pos
            if ch != "$":
                # Copy the run of plain text up to the next "$" (or "}") in one step.
                stop = len(text)
                for mark in ("$", "}") if closing else ("$",):
                    found = text.find(mark, pos)
                    if found >= 0:
                        stop = min(stop, found)
                out.append(text[pos:stop])
                pos = stop
                continue
            nxt = text[pos + 1:pos + 2]
            if nxt == "$":
                out.append("$")
                pos += 2
            elif nxt == "{":
                value, pos = self._braced(text, pos + 2, live)
                out.append(value)
            elif (m := _NAME.match(text, pos + 1)) is not None:
                out.append(self._lookup(m.group(0), live))
                pos = m.end()
            else:
                raise InterpolationError(
                    f"invalid interpolation {_excerpt(text, pos)}: a $ must start $VAR or "
                    "${VAR}; write $$ for a literal $")
        if closing:
            raise InterpolationError(f"unclosed ${{ in {_excerpt(text, 0)}")
        return "".join(out), pos

    def _braced(self, text: str, pos: int, live: bool) -> tuple[str, int]:
        m = _NAME.match(text, pos)
        if m is None:
            raise InterpolationError(f"invalid variable name in {_excerpt(text, pos - 2)}")
        name, pos = m.group(0), m.end()
        if text.startswith("}", pos):
            return self._lookup(name, live), pos + 1
        op = next((o for o in _OPERATORS if text.startswith(o, pos)), None)
        if op is None:
            raise InterpolationError(
                f"invalid interpolation {_excerpt(text, m.start() - 2)}: expected }}, :-, -, "
                ":?, ?, :+ or + after the variable name")
        value = self.environ.get(name)
        # With ":" an empty value counts as unset (as in a shell).
        is_set = value is not None and (value != "" or not op.startswith(":"))
        uses_arg = {"-": not is_set, "+": is_set, "?": not is_set}[op[-1]]
        arg, end = self._expand(text, pos + len(op), closing=True, live=live and uses_arg)
        if not live:
            return "", end + 1
        if op[-1] == "-":
            return (arg if not is_set else value or ""), end + 1
        if op[-1] == "+":
            return (arg if is_set else ""), end + 1
        if not is_set:
            detail = f": {arg}" if arg else ""
            raise InterpolationError(f"required variable {name} is missing a value{detail}")
        return value or "", end + 1

    def _lookup(self, name: str, live: bool) -> str:
        value = self.environ.get(name)
        if value is None:
            if live and name not in self.unset:
                self.unset.append(name)
            return ""
        return value


def _excerpt(text: str, pos: int) -> str:
    piece = text[max(pos, 0):max(pos, 0) + 24]
    return '"' + piece + ('..."' if len(text) > pos + 24 else '"')
