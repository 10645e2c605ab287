"""Image references: `name[:tag][@digest]`, parsed and normalised.

Names keep what the user wrote, except Docker Hub's spellings: `docker.io/library/busybox`,
`index.docker.io/library/busybox` and `busybox` are one name, stored as `busybox`
(`docker.io/user/app` becomes `user/app`). So the store never needs a default registry,
and an image pulled from a local registry (`localhost:5000/busybox`) stays distinct from
the locally built `busybox`. The tag defaults to `latest`; a reference with a digest and no
tag has no tag (it names content, not a tag).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.images.errors import InvalidReference

DEFAULT_TAG = "latest"
_HUB_DOMAINS = ("docker.io", "index.docker.io", "registry-1.docker.io")

# The grammar of distribution/reference, written out: lowercase path components joined by
# separators, an optional first component that is a registry host (with a dot or a port,
# or `localhost`), a tag of word characters, a digest algorithm:hex.
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN = re.compile(r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)"
                     r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
MAX_NAME = 255


@dataclass(frozen=True)
class Ref:
    """A parsed reference. `name` is normalised (see the module docstring)."""

    name: str
    tag: str | None
    digest: str | None = None

    def __str__(self) -> str:
        out = self.name
        if self.tag is not None:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out

    @property
    def tagged(self) -> str:
        """`name:tag`, the key under which the store keeps a tag."""
        return f"{self.name}:{self.tag or DEFAULT_TAG}"


def is_digest(text: str) -> bool:
    return _DIGEST.fullmatch(text) is not None


def parse_ref(text: str) -> Ref:
    """Parse `name[:tag][@sha256:hex]`; raises InvalidReference with the reason."""
    if not text or text != text.strip():
        raise InvalidReference(f"invalid image reference {text!r}: empty or padded")
    rest, at, digest = text.partition("@")
    if at and not is_digest(digest):
        raise InvalidReference(f"invalid image reference {text!r}: digest must be "
                               "sha256: and 64 lowercase hex digits")
    tag: str | None = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:  # a colon before the last slash is a registry port, not a tag
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise InvalidReference(f"invalid image reference {text!r}: bad tag {tag!r}")
    name = _normalise_name(rest, text)
    if tag is None and not at:
        tag = DEFAULT_TAG
    return Ref(name, tag, digest if at else None)


def _is_domain(first: str, more: bool) -> bool:
    """Whether a name's first component is a registry host rather than a path component."""
    return more and ("." in first or ":" in first or first == "localhost"
                     or first != first.lower())


def split_domain(name: str) -> tuple[str | None, str]:
    """(registry host or None, repository path) of a normalised name:
    `localhost:5000/app` → ("localhost:5000", "app"), `user/app` → (None, "user/app")."""
    first, _, rest = name.partition("/")
    return (first, rest) if _is_domain(first, bool(rest)) else (None, name)


def _normalise_name(name: str, text: str) -> str:
    parts = name.split("/")
    first = parts[0]
    has_domain = _is_domain(first, len(parts) > 1)
    if has_domain:
        if not _DOMAIN.fullmatch(first):
            raise InvalidReference(f"invalid image reference {text!r}: bad registry {first!r}")
        if first in _HUB_DOMAINS:
            parts = parts[1:]
            if len(parts) > 1 and parts[0] == "library":
                parts = parts[1:]
            has_domain = False
    path = parts[1:] if has_domain else parts
    if not path:
        raise InvalidReference(f"invalid image reference {text!r}: no repository name")
    for comp in path:
        if not _COMPONENT.fullmatch(comp):
            raise InvalidReference(
                f"invalid image reference {text!r}: {comp!r} is not a valid name component "
                "(lowercase letters, digits, and . _ - between them)")
    out = "/".join(parts)
    if len(out) > MAX_NAME:
        raise InvalidReference(f"invalid image reference {text!r}: name over {MAX_NAME} chars")
    return out


def normalise(text: str) -> str:
    """The canonical spelling: `busybox` → `busybox:latest`,
    `docker.io/library/busybox:1` → `busybox:1`."""
    return str(parse_ref(text))
