"""Resolve a compose ``user:`` against the image's /etc/passwd and /etc/group.

The names mean what the *container's* files say, never the host's: parsing is pure
(text in, ids out), and reading goes through ``read_in_rootfs``, which follows symlinks
as if the rootfs were ``/`` so that an image's ``/etc/passwd -> /host/etc/passwd`` (or an
absolute symlink) cannot make us read a host file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from agent.runtime.request import RequestError

_MAX_SYMLINKS = 40


@dataclass(frozen=True)
class ResolvedUser:
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


@dataclass(frozen=True)
class _Passwd:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class _Group:
    name: str
    gid: int
    members: tuple[str, ...]


def _parse_passwd(text: str) -> list[_Passwd]:
    entries = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) < 7 or line.startswith("#"):
            continue
        try:
            entries.append(_Passwd(parts[0], int(parts[2]), int(parts[3]), parts[5] or "/"))
        except ValueError:
            continue  # a malformed line does not make the whole file unusable (runc agrees)
    return entries


def _parse_group(text: str) -> list[_Group]:
    entries = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) < 4 or line.startswith("#"):
            continue
        try:
            members = tuple(m for m in parts[3].split(",") if m)
            entries.append(_Group(parts[0], int(parts[2]), members))
        except ValueError:
            continue
    return entries


def _numeric(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def resolve_user(user: str | None, passwd_text: str, group_text: str) -> ResolvedUser:
    """Docker's rules: a name must exist in passwd; a number need not (its gid is then 0);
    without an explicit group the user's primary gid and its supplementary groups from
    /etc/group apply; an explicit group replaces both."""
    user = (user or "").strip()
    user_part, _, group_part = user.partition(":")
    passwd = _parse_passwd(passwd_text)
    groups = _parse_group(group_text)

    entry: _Passwd | None
    if not user_part:
        user_part = "0"
    uid = _numeric(user_part)
    if uid is None:
        entry = next((p for p in passwd if p.name == user_part), None)
        if entry is None:
            raise RequestError(f"user {user_part!r} not found in the image's /etc/passwd")
        uid = entry.uid
    else:
        entry = next((p for p in passwd if p.uid == uid), None)
    gid = entry.gid if entry else 0
    home = entry.home if entry else "/"

    if group_part:
        numeric_gid = _numeric(group_part)
        if numeric_gid is None:
            group = next((g for g in groups if g.name == group_part), None)
            if group is None:
                raise RequestError(f"group {group_part!r} not found in the image's /etc/group")
            numeric_gid = group.gid
        return ResolvedUser(uid, numeric_gid, (), home)

    extra: list[int] = []
    if entry is not None:
        for group in groups:
            if entry.name in group.members and group.gid != gid and group.gid not in extra:
                extra.append(group.gid)
    return ResolvedUser(uid, gid, tuple(extra), home)


def resolve_in_rootfs(rootfs: Path, path: str) -> Path:
    """The host path of ``path`` inside ``rootfs``, following symlinks as the container
    would see them (absolute links and ``..`` stay inside the rootfs)."""
    root = Path(rootfs)
    parts = [p for p in path.split("/") if p and p != "."]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        if candidate.is_symlink():
            links += 1
            if links > _MAX_SYMLINKS:
                raise RequestError(f"too many symlinks resolving {path} in the image")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        resolved.append(part)
    return root.joinpath(*resolved)


def read_in_rootfs(rootfs: Path, path: str) -> str:
    """Text of a file in the image, or "" when it does not exist (an image without
    /etc/group is fine as long as nothing asks for a group name)."""
    try:
        return resolve_in_rootfs(rootfs, path).read_text(errors="replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return ""


def lookup_user(rootfs: Path, user: str | None) -> ResolvedUser:
    """Blocking I/O: call it in a thread from async code."""
    return resolve_user(user, read_in_rootfs(rootfs, "/etc/passwd"),
                        read_in_rootfs(rootfs, "/etc/group"))
