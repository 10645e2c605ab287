"""Compose's units: durations ("1m30s") and byte sizes ("512m")."""

from __future__ import annotations

import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_BYTES = re.compile(r"^(\d+(?:\.\d+)?)\s*([bkmg]?)b?$", re.IGNORECASE)
_BYTE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_duration(text: str | int | float) -> float:
    """Seconds in a compose duration: "10s", "1m30s", "1.5s", "500ms", or a number."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"{text!r} is negative")
        return float(text)
    s = text.strip()
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            raise ValueError(f"{text!r} is not a duration (like 10s, 1m30s, 500ms)")
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if not s:
        raise ValueError("empty duration")
    return total


def format_duration(seconds: float) -> str:
    """Canonical form: "1h2m3s", "1.5s", "500ms", "0s"."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{round(seconds * 1000, 3):g}ms"
    out = ""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        out += f"{int(hours)}h"
    if minutes:
        out += f"{int(minutes)}m"
    if secs:
        out += f"{round(secs, 3):g}s"
    return out


def parse_bytes(value: str | int) -> int:
    """Bytes in "512m", "1g", "1024k", "100b", "2gb" or an integer."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is negative")
        return value
    m = _BYTES.match(value.strip())
    if m is None:
        raise ValueError(f"{value!r} is not a size (like 512m, 1g, 1024k or bytes)")
    return int(float(m.group(1)) * _BYTE_UNITS[m.group(2).lower()])
