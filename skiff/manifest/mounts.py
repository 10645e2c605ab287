"""Compose's volume syntaxes, short and long, to Mount values."""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

from skiff.manifest.units import parse_bytes
from skiff.models.appspec import BindOptions, Mount, TmpfsOptions, VolumeOptions

_MODES = {"ro": True, "rw": False}
# Options Docker accepts after the second colon that change nothing for skiff's runtime
# (SELinux labels, propagation); accepted so compose files load, kept out of the spec.
_IGNORED_MODES = {"z", "Z", "rprivate", "private", "rshared", "shared", "rslave", "slave",
                  "nocopy", "cached", "delegated", "consistent"}


class MountError(ValueError):
    pass


def _is_path(source: str) -> bool:
    return source.startswith(("/", "./", "../", "~")) or source in (".", "..")


def _check_target(target: str) -> str:
    if not target.startswith("/"):
        raise MountError(f"target {target!r} must be an absolute path in the container")
    if ".." in target.split("/"):
        raise MountError(f"target {target!r} must not contain '..'")
    return posixpath.normpath(target)


def resolve_bind(source: str, base_dir: Path | None) -> str:
    if source.startswith("~"):
        return str(Path(source).expanduser())
    if source.startswith("/"):
        return posixpath.normpath(source)
    if base_dir is None:
        raise MountError(f"relative bind source {source!r} needs the manifest's folder; "
                         "send absolute paths")
    return posixpath.normpath(str(base_dir / source))


def check_volume_name(name: str) -> None:
    if not name or "/" in name or name in (".", "..") or ".." in name:
        raise MountError(f"volume name {name!r} must not contain '/' or '..'")


def parse_short(spec: str, base_dir: Path | None) -> Mount:
    """"/data" (anonymous), "name:/data[:ro]", "./dir:/data[:ro]", "/host:/data[:ro]"."""
    parts = spec.split(":")
    if len(parts) == 1:
        return Mount(type="volume", target=_check_target(parts[0]))
    if len(parts) > 3:
        raise MountError(f"{spec!r} is not SOURCE:TARGET[:MODE]")
    source, target = parts[0], _check_target(parts[1])
    read_only = False
    if len(parts) == 3:
        for mode in parts[2].split(","):
            if mode in _MODES:
                read_only = _MODES[mode]
            elif mode not in _IGNORED_MODES:
                raise MountError(f"{spec!r}: unknown mode {mode!r} (ro or rw)")
    if not source:
        raise MountError(f"{spec!r} has an empty source")
    if _is_path(source):
        # Docker's short syntax creates a missing host folder; the long syntax does not.
        return Mount(type="bind", source=resolve_bind(source, base_dir), target=target,
                     read_only=read_only, bind=BindOptions(create_host_path=True))
    check_volume_name(source)
    return Mount(type="volume", source=source, target=target, read_only=read_only)


def _bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise MountError(f"{what} must be true or false, got {value!r}")


def parse_long(entry: dict[str, Any], base_dir: Path | None) -> Mount:
    kind = entry["type"]
    target = _check_target(entry["target"])
    source = entry.get("source")
    read_only = _bool(entry.get("read_only", False), "read_only")
    if kind == "bind":
        if not source:
            raise MountError("a bind mount needs a source")
        create = _bool(entry.get("bind", {}).get("create_host_path", False),
                       "bind.create_host_path")
        return Mount(type="bind", source=resolve_bind(source, base_dir), target=target,
                     read_only=read_only, bind=BindOptions(create_host_path=create))
    if kind == "volume":
        if source:
            check_volume_name(source)
        nocopy = _bool(entry.get("volume", {}).get("nocopy", False), "volume.nocopy")
        return Mount(type="volume", source=source or None, target=target, read_only=read_only,
                     volume=VolumeOptions(nocopy=True) if nocopy else None)
    if source:
        raise MountError("a tmpfs mount has no source")
    opts = entry.get("tmpfs", {})
    size = parse_bytes(opts["size"]) if "size" in opts else None
    mode = int(str(opts["mode"]), 8) if "mode" in opts else None
    return Mount(type="tmpfs", target=target, read_only=read_only,
                 tmpfs=TmpfsOptions(size=size, mode=mode) if size or mode else None)
