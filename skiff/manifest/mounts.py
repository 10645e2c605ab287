"""Compose's volume syntaxes, short and long, to Mount values."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from skiff.manifest.convert import to_bool, to_int
from skiff.manifest.errors import quote
from skiff.manifest.units import parse_bytes
from skiff.models.appspec import BindOptions, Mount, TmpfsOptions, VolumeOptions

# Compose's rule for volume (and network) keys.
NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_MODES = {"ro": True, "rw": False}
# Options Docker accepts after the second colon that change nothing for skiff's runtime
# (SELinux labels, propagation, macOS consistency); accepted so compose files load.
_IGNORED_MODES = {"z", "Z", "rprivate", "private", "rshared", "shared", "rslave", "slave",
                  "cached", "delegated", "consistent"}


class MountError(ValueError):
    pass


def _is_path(source: str) -> bool:
    return source.startswith(("/", ".", "~"))


def check_target(target: str) -> str:
    if not target.startswith("/"):
        raise MountError(f"target {quote(target)} must be an absolute path in the container")
    if ".." in target.split("/"):
        raise MountError(f"target {quote(target)} must not contain '..'")
    # normpath keeps a leading "//"; one slash, so "/data" and "//data/" are one target.
    return "/" + posixpath.normpath(target).lstrip("/")


def resolve_bind(source: str, base_dir: Path | None) -> str:
    """An absolute host path. Relative and ``~`` paths need the manifest's own machine
    and folder, so documents received over the API must send absolute ones."""
    if source.startswith("/"):
        return "/" + posixpath.normpath(source).lstrip("/")
    if base_dir is None:
        raise MountError(f"bind source {quote(source)} must be an absolute path here "
                         "(relative paths are resolved by the CLI, beside the manifest)")
    if source.startswith("~"):
        try:
            expanded = Path(source).expanduser()
        except RuntimeError:  # no HOME, or ~user of an unknown user
            raise MountError(f"cannot expand {quote(source)}: unknown home folder") from None
        return "/" + posixpath.normpath(str(base_dir / expanded)).lstrip("/")
    return "/" + posixpath.normpath(str(base_dir / source)).lstrip("/")


def check_volume_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise MountError(f"volume name {quote(name)} must be letters, digits, '_', '.' or "
                         "'-', starting with a letter or digit (paths start with / or ./)")
    return name


def parse_short(spec: str, base_dir: Path | None) -> Mount:
    """"/data" (anonymous), "name:/data[:ro]", "./dir:/data[:ro]", "/host:/data[:ro]"."""
    parts = spec.split(":")
    if len(parts) == 1:
        return Mount(type="volume", target=check_target(parts[0]))
    if len(parts) > 3:
        raise MountError(f"{quote(spec)} is not SOURCE:TARGET[:MODE]")
    source, target = parts[0], check_target(parts[1])
    read_only, nocopy = False, False
    if len(parts) == 3:
        for mode in parts[2].split(","):
            if mode in _MODES:
                read_only = _MODES[mode]
            elif mode == "nocopy":
                nocopy = True
            elif mode not in _IGNORED_MODES:
                raise MountError(f"{quote(spec)}: unknown mode {quote(mode)} (ro or rw)")
    if not source:
        raise MountError(f"{quote(spec)} has an empty source")
    if _is_path(source):
        # Docker's short syntax creates a missing host folder; the long syntax does not.
        return Mount(type="bind", source=resolve_bind(source, base_dir), target=target,
                     read_only=read_only, bind=BindOptions(create_host_path=True))
    return Mount(type="volume", source=check_volume_name(source), target=target,
                 read_only=read_only, volume=VolumeOptions(nocopy=True) if nocopy else None)


def _option(entry: dict[str, Any], section: str, key: str) -> Any:
    return (entry.get(section) or {}).get(key)


def _flag(entry: dict[str, Any], section: str, key: str) -> bool:
    value = _option(entry, section, key)
    if value is None:
        return False
    try:
        return to_bool(value)
    except ValueError as exc:
        raise MountError(f"{section}.{key}: {exc}") from None


def parse_long(entry: dict[str, Any], base_dir: Path | None) -> Mount:
    kind = entry["type"]
    target = check_target(entry["target"])
    source = entry.get("source") or None
    read_only = _flag({"m": entry}, "m", "read_only")
    if kind == "bind":
        if not source:
            raise MountError("a bind mount needs a source")
        return Mount(type="bind", source=resolve_bind(source, base_dir), target=target,
                     read_only=read_only,
                     bind=BindOptions(create_host_path=_flag(entry, "bind", "create_host_path")))
    if kind == "volume":
        nocopy = _flag(entry, "volume", "nocopy")
        return Mount(type="volume", source=check_volume_name(source) if source else None,
                     target=target, read_only=read_only,
                     volume=VolumeOptions(nocopy=True) if nocopy else None)
    if source:
        raise MountError("a tmpfs mount has no source")
    size, mode = _option(entry, "tmpfs", "size"), _option(entry, "tmpfs", "mode")
    try:
        size = parse_bytes(size) if size is not None else None
    except ValueError as exc:
        raise MountError(f"tmpfs.size: {exc}") from None
    if isinstance(mode, str):  # "1777" or "0o1777": octal, as chmod reads it
        if not re.fullmatch(r"(0o)?[0-7]{1,4}", mode.strip()):
            raise MountError(f"tmpfs.mode: {quote(mode)} is not an octal mode like 1777")
        mode = int(mode.strip().removeprefix("0o"), 8)
    elif mode is not None:  # a YAML integer is the number itself (write 0o1777 or 01777)
        try:
            mode = to_int(mode, 0, 0o7777)
        except ValueError as exc:
            raise MountError(f"tmpfs.mode: {exc}") from None
    options = TmpfsOptions(size=size, mode=mode)
    return Mount(type="tmpfs", target=target, read_only=read_only,
                 tmpfs=options if options != TmpfsOptions() else None)
