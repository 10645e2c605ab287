"""What a task's mounts need on this node before its container starts: named volumes
made (and filled from the image once), bind sources checked.

Named volume `todo_data` lives in `<volumes_dir>/todo_data/_data`, with its record in
`<volumes_dir>/todo_data/volume.json` (when it was made, whether the image's content was
copied in), so an agent restart finds the same folder and creation time. A new volume is
first filled with what the image has at the mount point, as Docker does, unless the mount
says `nocopy`; only once, so a volume emptied on purpose stays empty.

A bind source must exist unless the mount says `create_host_path` (then a folder is
made), and must not be a device: a device node would hand the container raw access."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agent.images import fsutil

RECORD = "volume.json"
DATA = "_data"
MAX_SYMLINKS = 40


class MountSetupError(Exception):
    pass


@dataclass(frozen=True)
class VolumeRecord:
    name: str
    created_at: str
    populated: bool = False


def volume_path(volumes_dir: Path, name: str) -> Path:
    if not name or "/" in name or name in (".", ".."):
        raise MountSetupError(f"volume name {name!r} is not a plain name")
    return volumes_dir / name


def read_record(volumes_dir: Path, name: str) -> VolumeRecord | None:
    try:
        data = json.loads((volume_path(volumes_dir, name) / RECORD).read_text())
        return VolumeRecord(str(data["name"]), str(data["createdAt"]),
                            bool(data.get("populated", False)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_record(volumes_dir: Path, record: VolumeRecord) -> None:
    body = json.dumps({"name": record.name, "createdAt": record.created_at,
                       "populated": record.populated}).encode()
    fsutil.write_atomic(volume_path(volumes_dir, record.name) / RECORD, body,
                        volume_path(volumes_dir, record.name))


def ensure_volume(volumes_dir: Path, name: str) -> VolumeRecord:
    """Blocking: the volume's folder and record, made if missing."""
    home = volume_path(volumes_dir, name)
    record = read_record(volumes_dir, name)
    (home / DATA).mkdir(parents=True, exist_ok=True, mode=0o755)
    if record is None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        # A folder from before records existed keeps its contents: count it as filled.
        filled = any((home / DATA).iterdir())
        record = VolumeRecord(name, now, populated=filled)
        _write_record(volumes_dir, record)
    return record


def resolve_in_root(root: Path, path: str) -> Path | None:
    """`path` inside the container's root file system, following symlinks as the
    container would (absolute ones from its root, never above it); None if missing."""
    parts = [p for p in path.split("/") if p and p != "."]
    current = root
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            current = current.parent if current != root else root
            continue
        candidate = current / part
        try:
            st = candidate.lstat()
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > MAX_SYMLINKS:
                return None
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = root
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        current = candidate
    return current


def fill_volume(volumes_dir: Path, name: str, rootfs: Path, target: str) -> bool:
    """Blocking: copy the image's content at `target` into a new, empty volume, once.
    Whether anything was copied."""
    record = ensure_volume(volumes_dir, name)
    data = volume_path(volumes_dir, name) / DATA
    if record.populated:
        return False
    copied = False
    source = resolve_in_root(rootfs, target)
    if source is not None and source.is_dir() and not any(data.iterdir()):
        # cp -a keeps owners, modes, times, symlinks and xattrs as the image has them.
        proc = subprocess.run(["cp", "-a", "--", f"{source}/.", f"{data}/"],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise MountSetupError(f"cannot fill volume {name} from the image's {target}: "
                                  f"{proc.stderr.strip()[:300]}")
        copied = True
    _write_record(volumes_dir, VolumeRecord(name, record.created_at, populated=True))
    return copied


def check_bind_source(source: str, create: bool, node: str) -> None:
    """Blocking: the source exists (or is made, with `create`) and is no device."""
    path = Path(source)
    try:
        st = path.stat()
    except FileNotFoundError:
        if not create:
            raise MountSetupError(
                f"bind source {source} does not exist on node {node} (create it, or set "
                "bind.create_host_path: true)") from None
        path.mkdir(parents=True, exist_ok=True)
        return
    except OSError as exc:
        raise MountSetupError(f"bind source {source} on node {node}: {exc.strerror}") \
            from None
    if stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode):
        raise MountSetupError(f"bind source {source} is a device; skiff does not hand "
                              "devices to containers")


def remove_volume(volumes_dir: Path, name: str) -> None:
    """Blocking: the folder and record, gone. Renamed first, so that a crash half-way
    never leaves a half-removed volume under its name."""
    home = volume_path(volumes_dir, name)
    if not home.exists():
        return
    doomed = volumes_dir / fsutil.temp_name(f"removing-{name}")
    os.rename(home, doomed)
    fsutil.remove_tree(doomed)
