"""Compose's units: durations ("1m30s") and byte sizes ("512m")."""

from __future__ import annotations

import math
import re
from fractions import Fraction

from skiff.manifest.errors import quote

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(h|ms|m|s|us|ns)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
# A year is far beyond any stop grace period; the cap keeps the arithmetic finite.
MAX_DURATION_SECONDS = 365 * 24 * 3600.0
_BYTES = re.compile(r"([0-9]{1,30}(?:\.[0-9]{1,30})?)\s*([bkmgt]?)b?", re.IGNORECASE)
_BYTE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
MAX_BYTES = 2**63 - 1  # what the kernel's cgroup and tmpfs interfaces take


def parse_duration(text: str | int | float) -> float:
    """Seconds in a compose duration: "10s", "1m30s", "1.5s", "500ms", or a number of
    seconds. Raises ValueError with a plain message on anything else."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError(f"expected a duration like 10s, 1m30s or 500ms, got {quote(text)}")
    if isinstance(text, int | float):
        total = float(text) if not isinstance(text, int) or text.bit_length() < 64 else math.inf
    else:
        s = text.strip()
        if not s:
            raise ValueError("expected a duration like 10s, 1m30s or 500ms, got an empty string")
        pos, total = 0, 0.0
        while pos < len(s):
            m = _DURATION_PART.match(s, pos)
            if m is None:
                raise ValueError(f"{quote(text)} is not a duration (like 10s, 1m30s, 500ms)")
            total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
            pos = m.end()
    if not 0 <= total <= MAX_DURATION_SECONDS:  # also refuses nan and inf
        raise ValueError(f"duration {quote(text)} must be between 0 and one year")
    return total


def format_duration(seconds: float) -> str:
    """Canonical form, stable under parse_duration: "1h2m3s", "1.5s", "500ms", "0s"."""
    millis = round(seconds * 1000, 3)
    if millis == 0:
        return "0s"
    if millis < 1000:
        return _decimal(millis, 3) + "ms"
    out = ""
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    if hours:
        out += f"{int(hours)}h"
    if minutes:
        out += f"{int(minutes)}m"
    if rest:
        out += _decimal(rest / 1000, 6) + "s"
    return out


def _decimal(value: float, places: int) -> str:
    """No exponent and no trailing zeros, unlike %g (which keeps 6 significant digits)."""
    return f"{value:.{places}f}".rstrip("0").rstrip(".")


def parse_bytes(value: str | int) -> int:
    """Bytes in "512m", "1g", "1024k", "100b", "2gb", "1.5g" or an integer.
    Units are binary (k = 1024), as in compose. Raises ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"expected a size like 512m, 1g or a number of bytes, "
                         f"got {quote(value)}")
    if isinstance(value, int):
        size = value
    else:
        m = _BYTES.fullmatch(value.strip())
        if m is None:
            raise ValueError(f"{quote(value)} is not a size (like 512m, 1g, 1024k or bytes)")
        # Fraction, not float: exact for "1.5g", and no overflow on long digit strings.
        size = int(Fraction(m.group(1)) * _BYTE_UNITS[m.group(2).lower()])
    if not 0 <= size <= MAX_BYTES:
        raise ValueError(f"size {quote(value)} must be between 0 and {MAX_BYTES} bytes")
    return size
