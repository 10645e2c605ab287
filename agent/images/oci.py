"""OCI and Docker image JSON: media types, digests, and parsing manifests and configs into
typed values with every field checked. No file I/O here (unit-testable as is).

Accepted: OCI image manifests and Docker schema 2 manifests (what registries serve), OCI
and Docker image configs, layers as tar or tar+gzip (the store sniffs the compression).
Refused with UnsupportedImage: zstd layers, digests other than sha256, schema 1.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.images.errors import InvalidImage, UnsupportedImage
from agent.images.models import Descriptor, HistoryEntry, ImageConfig
from agent.images.refs import is_digest

OCI_LAYOUT_VERSION = "1.0.0"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
ANNOTATION_REF = "org.opencontainers.image.ref.name"

INDEX_TYPES = frozenset({MT_OCI_INDEX, MT_DOCKER_LIST})
MANIFEST_TYPES = frozenset({MT_OCI_MANIFEST, MT_DOCKER_MANIFEST})
CONFIG_TYPES = frozenset({MT_OCI_CONFIG, MT_DOCKER_CONFIG})
LAYER_TYPES = frozenset({
    MT_OCI_LAYER, MT_OCI_LAYER_GZIP, MT_DOCKER_LAYER_GZIP,
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
})

# Bounds on JSON documents: real ones are a few KiB; these stop a hostile file from
# making the agent parse hundreds of megabytes.
MAX_MANIFEST_BYTES = 4 << 20
MAX_CONFIG_BYTES = 8 << 20
MAX_INDEX_BYTES = 4 << 20
# Overlayfs stacks at most 500 lower layers; Docker stops builds at 127.
MAX_LAYERS = 127


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_hex(digest: str, what: str = "digest") -> str:
    """The hex part of a sha256 digest. Everything else is refused here, which also keeps
    `blobs/sha256/<hex>` from ever being a path like `../../etc`."""
    if not isinstance(digest, str) or not is_digest(digest):
        if isinstance(digest, str) and ":" in digest and not digest.startswith("sha256:"):
            raise UnsupportedImage(f"{what} {digest!r}: only sha256 digests are supported")
        raise InvalidImage(f"{what} {digest!r} is not sha256:<64 lowercase hex>")
    return digest[7:]


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no spaces: equal content gives equal bytes, hence equal digests."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def load_json(data: bytes, what: str, limit: int) -> dict[str, Any]:
    if len(data) > limit:
        raise InvalidImage(f"{what} is {len(data)} bytes, over the {limit} byte limit")
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidImage(f"{what} is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidImage(f"{what} is not a JSON object")
    return obj


def host_platform() -> tuple[str, str]:
    """(os, architecture) in OCI spelling, to pick a manifest from a multi-platform index."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
        machine, machine)
    return "linux", arch


def parse_descriptor(obj: Any, what: str) -> Descriptor:
    if not isinstance(obj, dict):
        raise InvalidImage(f"{what} is not a descriptor object")
    mt, digest, size = obj.get("mediaType"), obj.get("digest"), obj.get("size")
    if not isinstance(mt, str) or not mt:
        raise InvalidImage(f"{what} has no mediaType")
    digest_hex(digest, f"{what} digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidImage(f"{what} has no valid size")
    ann = obj.get("annotations") or {}
    if not isinstance(ann, dict) or not all(isinstance(v, str) for v in ann.values()):
        raise InvalidImage(f"{what} annotations must map strings to strings")
    return Descriptor(mt, digest, size, dict(ann))


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


def parse_manifest(data: bytes, media_type: str | None = None) -> Manifest:
    """Parse and check an image manifest. `media_type` is what the referring descriptor
    said; a manifest's own mediaType field, when present, must agree with it."""
    obj = load_json(data, "manifest", MAX_MANIFEST_BYTES)
    if obj.get("schemaVersion") != 2:
        raise UnsupportedImage(f"manifest schemaVersion {obj.get('schemaVersion')!r}: "
                               "only schema 2 is supported")
    own = obj.get("mediaType")
    if own in INDEX_TYPES or "manifests" in obj:
        raise InvalidImage("expected an image manifest, found an image index")
    mt = own or media_type or MT_OCI_MANIFEST
    if own and media_type and own != media_type:
        raise InvalidImage(f"manifest says mediaType {own!r} but was referred to as "
                           f"{media_type!r}")
    if mt not in MANIFEST_TYPES:
        raise UnsupportedImage(f"manifest media type {mt!r} is not supported")
    config = parse_descriptor(obj.get("config"), "manifest config")
    if config.media_type not in CONFIG_TYPES:
        raise UnsupportedImage(f"config media type {config.media_type!r} is not an image "
                               "config (an artifact, not a runnable image?)")
    raw_layers = obj.get("layers")
    if not isinstance(raw_layers, list):
        raise InvalidImage("manifest has no layers list")
    if len(raw_layers) > MAX_LAYERS:
        raise InvalidImage(f"manifest has {len(raw_layers)} layers, over {MAX_LAYERS}")
    layers = tuple(parse_descriptor(x, f"layer {i}") for i, x in enumerate(raw_layers))
    for i, layer in enumerate(layers):
        if layer.media_type.endswith("+zstd"):
            raise UnsupportedImage(f"layer {i} is zstd-compressed ({layer.media_type}); "
                                   "skiff unpacks tar and tar+gzip layers only")
        if layer.media_type not in LAYER_TYPES:
            raise UnsupportedImage(f"layer {i} media type {layer.media_type!r} is not "
                                   "supported")
    return Manifest(mt, config, layers)


@dataclass(frozen=True)
class ParsedConfig:
    config: ImageConfig
    diff_ids: tuple[str, ...]
    created: str | None
    history: tuple[HistoryEntry, ...]
    architecture: str
    os: str


def _str_list(value: Any, what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise InvalidImage(f"config {what} must be a list of strings")
    return tuple(value)


def _opt_str(value: Any, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InvalidImage(f"config {what} must be a string")


def _keys(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise InvalidImage(f"config {what} must be an object")
    return tuple(sorted(str(k) for k in value))


def parse_config(data: bytes) -> ParsedConfig:
    obj = load_json(data, "image config", MAX_CONFIG_BYTES)
    rootfs = obj.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise InvalidImage("image config rootfs.type must be 'layers'")
    diff_ids = _str_list(rootfs.get("diff_ids"), "rootfs.diff_ids") or ()
    for d in diff_ids:
        digest_hex(d, "diff_id")
    c = obj.get("config") or {}
    if not isinstance(c, dict):
        raise InvalidImage("image config 'config' must be an object")
    labels = c.get("Labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise InvalidImage("config Labels must map strings to strings")
    health = c.get("Healthcheck")
    if health is not None and not isinstance(health, dict):
        raise InvalidImage("config Healthcheck must be an object")
    cfg = ImageConfig(
        env=_str_list(c.get("Env"), "Env") or (),
        cmd=_str_list(c.get("Cmd"), "Cmd"),
        entrypoint=_str_list(c.get("Entrypoint"), "Entrypoint"),
        working_dir=_opt_str(c.get("WorkingDir"), "WorkingDir") or "",
        user=_opt_str(c.get("User"), "User") or "",
        exposed_ports=_keys(c.get("ExposedPorts"), "ExposedPorts"),
        volumes=_keys(c.get("Volumes"), "Volumes"),
        stop_signal=_opt_str(c.get("StopSignal"), "StopSignal"),
        labels=dict(labels),
        healthcheck=dict(health) if health else None,
    )
    raw_hist = obj.get("history") or []
    if not isinstance(raw_hist, list):
        raise InvalidImage("config history must be a list")
    history = tuple(
        HistoryEntry(created=_opt_str(h.get("created"), "history.created"),
                     created_by=_opt_str(h.get("created_by"), "history.created_by"),
                     author=_opt_str(h.get("author"), "history.author"),
                     comment=_opt_str(h.get("comment"), "history.comment"),
                     empty_layer=bool(h.get("empty_layer", False)))
        for h in raw_hist if isinstance(h, dict))
    return ParsedConfig(cfg, diff_ids, _opt_str(obj.get("created"), "created"), history,
                        str(obj.get("architecture") or ""), str(obj.get("os") or ""))


def make_config(diff_ids: Sequence[str], *, created: str, created_by: str,
                env: Sequence[str] = (), cmd: Sequence[str] | None = ("sh",),
                labels: Mapping[str, str] | None = None) -> bytes:
    """A minimal image config for images skiff makes itself (rootfs imports, busybox)."""
    os_name, arch = host_platform()
    config: dict[str, Any] = {"Env": list(env)}
    if cmd is not None:
        config["Cmd"] = list(cmd)
    if labels:
        config["Labels"] = dict(labels)
    return canonical_json({
        "created": created, "architecture": arch, "os": os_name, "config": config,
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created": created, "created_by": created_by}],
    })


def make_manifest(config: bytes, layers: Sequence[Descriptor]) -> bytes:
    return canonical_json({
        "schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
        "config": {"mediaType": MT_OCI_CONFIG, "digest": sha256_digest(config),
                   "size": len(config)},
        "layers": [d.to_json() for d in layers],
    })

# Bounds on layer content (listed in importer.py's docstring): a blob of at most 16 GiB, a
# layer of at most 64 GiB and a million entries once uncompressed. They stop a gzip bomb
# or a billion-entry tar from filling the node's disk or memory.
MAX_BLOB_BYTES = 16 << 30
MAX_LAYER_BYTES = 64 << 30
MAX_LAYER_MEMBERS = 1_000_000
