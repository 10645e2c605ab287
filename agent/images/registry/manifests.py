"""Manifests on the wire: the Accept header a pull sends, telling an index from an image
manifest, and picking this host's platform from an index. Pure."""

from __future__ import annotations

from agent.images.errors import InvalidImage, UnsupportedImage
from agent.images.models import Descriptor
from agent.images.oci import (
    INDEX_TYPES,
    MAX_INDEX_BYTES,
    MT_DOCKER_LIST,
    MT_DOCKER_MANIFEST,
    MT_OCI_INDEX,
    MT_OCI_MANIFEST,
    load_json,
    parse_descriptor,
)

# Schema 1 is left out on purpose: a registry then converts or refuses, and the store
# cannot hold schema 1 anyway.
ACCEPT = ", ".join((MT_OCI_MANIFEST, MT_DOCKER_MANIFEST, MT_OCI_INDEX, MT_DOCKER_LIST))


def media_type_of(data: bytes, content_type: str | None) -> str:
    """The document's own mediaType, else the Content-Type the registry sent, else a
    guess from its shape (OCI allows an index or manifest without mediaType)."""
    obj = load_json(data, "manifest", MAX_INDEX_BYTES)
    own = obj.get("mediaType")
    if isinstance(own, str) and own:
        return own
    ct = (content_type or "").split(";")[0].strip()
    if ct and ct not in ("application/json", "application/octet-stream", "text/plain"):
        return ct
    return MT_OCI_INDEX if "manifests" in obj else MT_OCI_MANIFEST


def is_index(media_type: str) -> bool:
    return media_type in INDEX_TYPES


def choose_platform(data: bytes, want: tuple[str, str], what: str) -> Descriptor:
    """The index entry for `want` (os, architecture). An entry without a platform is
    taken only if it is the only one (some single-platform indexes omit it)."""
    obj = load_json(data, what, MAX_INDEX_BYTES)
    raw = obj.get("manifests")
    if not isinstance(raw, list) or not raw:
        raise InvalidImage(f"{what}: image index lists no manifests")
    seen = []
    for i, entry in enumerate(raw):
        desc = parse_descriptor(entry, f"{what} entry {i}")
        plat = entry.get("platform") if isinstance(entry, dict) else None
        if not isinstance(plat, dict):
            if len(raw) == 1:
                return desc
            continue
        have = (plat.get("os"), plat.get("architecture"))
        seen.append(f"{have[0]}/{have[1]}")
        if have == want:
            return desc
    listed = ", ".join(seen) or "no platforms"
    raise UnsupportedImage(f"{what}: no image for {want[0]}/{want[1]} (has {listed})")
