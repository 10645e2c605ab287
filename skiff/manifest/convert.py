"""Reading single values of a schema-valid document into model types.

After interpolation every value may be a string (``replicas: ${N}``), so the casts
here accept the string forms of numbers and booleans and say plainly what was wrong.
Each raises ValueError; Collector turns that into a problem at the key being read.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from skiff.manifest.errors import MAX_PROBLEMS, KeyPath, quote

T = TypeVar("T")
_INT_TEXT = re.compile(r"[-+]?[0-9]{1,18}")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


class TooManyProblems(Exception):
    """Raised by Collector.add past MAX_PROBLEMS: stops normalising a hopeless document."""


class Collector:
    """Problems and warnings found while normalising, each with its key path, so one
    run reports them all. ``at_key`` puts a problem at the key instead of its value."""

    def __init__(self) -> None:
        self.problems: list[tuple[KeyPath, bool, str]] = []
        self.warnings: list[tuple[KeyPath, str]] = []

    def add(self, path: KeyPath, message: str, at_key: bool = False) -> None:
        self.problems.append((path, at_key, message))
        if len(self.problems) > MAX_PROBLEMS:
            raise TooManyProblems

    def warn(self, path: KeyPath, message: str) -> None:
        self.warnings.append((path, message))

    def attempt(self, path: KeyPath, fn: Callable[[], T]) -> T | None:
        """``fn()``, or None after recording its ValueError as a problem at ``path``."""
        try:
            return fn()
        except ValueError as exc:
            self.add(path, str(exc))
            return None

    def read(self, raw: Mapping[str, Any], key: str, path: KeyPath,
             fn: Callable[[Any], T], default: T) -> T:
        """``fn(raw[key])`` if the key is there and reads cleanly, else ``default``."""
        if key not in raw or raw[key] is None:
            return default
        value = self.attempt((*path, key), lambda: fn(raw[key]))
        return default if value is None else value


def to_int(value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {quote(value)}")
    if value < low or (high is not None and value > high):
        limit = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"must be {limit}, got {quote(value)}")
    return value


def to_float(value: Any, low: float, high: float) -> float:
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value) if not isinstance(value, int) or value.bit_length() < 64 \
            else math.inf
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None:
        raise ValueError(f"expected a number, got {quote(value)}")
    if not low < number <= high:  # also refuses nan
        raise ValueError(f"must be above {low:g} and at most {high:g}, got {quote(value)}")
    return number


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"expected true or false, got {quote(value)}")


def scalar_text(value: Any) -> str:
    """Environment and label values are strings; YAML numbers and booleans become the
    text compose would give them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value.bit_length() > 160:
        raise ValueError("number too large for a string value; quote it")
    return str(value)


def string_map(value: Any, environ: Mapping[str, str] | None = None,
               from_environment: bool = False) -> dict[str, str]:
    """A mapping, or a list of ``K=V``. A bare ``K`` (or ``K:`` with no value) takes its
    value from ``environ`` for environment variables, and is dropped if unset there; for
    labels it is an empty string."""
    pairs: list[tuple[str, Any]]
    if isinstance(value, dict):
        pairs = list(value.items())
    else:
        pairs = []
        for entry in value:
            key, sep, val = str(entry).partition("=")
            pairs.append((key, val if sep else None))
    out: dict[str, str] = {}
    for key, val in pairs:
        if not key or key != key.strip():
            raise ValueError(f"entry {quote(key)} needs a name without surrounding spaces")
        if val is None:
            if not from_environment:
                out[key] = ""
            elif environ is not None and key in environ:
                out[key] = environ[key]
            continue  # unset in the environment: left out, as compose does
        out[key] = scalar_text(val)
    return out


def command_line(value: Any) -> list[str]:
    """A command as a list, or a string split the way a shell would split it."""
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"not a valid command line ({exc}): {quote(value)}") from None
    return [scalar_text(v) for v in value]
