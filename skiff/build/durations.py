"""Go duration strings (`30s`, `1m30s`, `1.5h`, `500ms`), as HEALTHCHECK flags take them,
to nanoseconds as the image config stores them."""

from __future__ import annotations

import re

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
          "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration_ns(text: str) -> int:
    """Nanoseconds; ValueError naming the text when it is not a Go duration. `0` alone is
    allowed (Go accepts it; Docker reads it as "use the default")."""
    if text == "0":
        return 0
    pos = 0
    total = 0.0
    if not text:
        raise ValueError("empty duration")
    while pos < len(text):
        match = _PART.match(text, pos)
        if not match:
            raise ValueError(f"invalid duration {text!r} (expected like 30s, 1m30s, 500ms)")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return round(total)
