"""WWW-Authenticate parsing (RFC 7235 challenges): `Bearer realm="...",service="...",
scope="..."` or `Basic realm="..."`, possibly several in one header. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SPACE = re.compile(r"[ \t]*")


@dataclass(frozen=True)
class Challenge:
    scheme: str                       # lowercased: "bearer", "basic"
    params: dict[str, str] = field(default_factory=dict)  # keys lowercased

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scope(self) -> str | None:
        return self.params.get("scope")


def _quoted(text: str, i: int) -> tuple[str, int]:
    """The quoted-string starting at text[i] == '"', and the index after it."""
    out = []
    i += 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif c == '"':
            return "".join(out), i + 1
        else:
            out.append(c)
            i += 1
    raise ValueError("unterminated quoted string")


def parse_www_authenticate(header: str) -> list[Challenge]:
    """Every challenge in the header, in order. Malformed trailing parts end the parse:
    a registry's odd header should not hide the challenges that did parse."""
    out: list[Challenge] = []
    i, n = 0, len(header)
    current: Challenge | None = None
    while i < n:
        i = _SPACE.match(header, i).end()  # type: ignore[union-attr]
        if i < n and header[i] == ",":
            i += 1
            continue
        m = _TOKEN.match(header, i)
        if not m:
            break
        word, j = m.group(), m.end()
        j2 = _SPACE.match(header, j).end()  # type: ignore[union-attr]
        if current is not None and j2 < n and header[j2] == "=" and \
                not header.startswith("==", j2):
            k = _SPACE.match(header, j2 + 1).end()  # type: ignore[union-attr]
            try:
                if k < n and header[k] == '"':
                    value, i = _quoted(header, k)
                else:
                    vm = _TOKEN.match(header, k)
                    value, i = (vm.group(), vm.end()) if vm else ("", k)
            except ValueError:
                break
            current.params[word.lower()] = value
            continue
        current = Challenge(word.lower())
        out.append(current)
        i = j
    return out


def pick(challenges: list[Challenge]) -> Challenge | None:
    """Bearer if offered (it carries scopes), else Basic; other schemes are not spoken."""
    for scheme in ("bearer", "basic"):
        for c in challenges:
            if c.scheme == scheme:
                return c
    return None
