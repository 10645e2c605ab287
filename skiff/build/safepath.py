"""Where a COPY or ADD source may read from: inside the context, and nowhere else.

Refused with UnsafePath: an absolute source (Docker reads `/x` as `x` of the context;
skiff refuses it so the intent is never ambiguous), a source whose `..` climbs above the
context root, and a path that goes through a symlink whose target is absolute or climbs
out of the context. Symlinks that stay inside are followed, component by component,
within the context, never via the host's view of the path.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path

from skiff.build.errors import IgnoreError, SourceError, UnsafePath
from skiff.build.ignore import glob_regex
from skiff.build.paths import go_clean

MAX_SYMLINK_HOPS = 40  # Linux's limit for one path lookup
_REMOTE_PREFIXES = ("http://", "https://", "git@", "git://")


def is_remote(source: str) -> bool:
    """An ADD source that is a URL or git address, not a context path."""
    return source.startswith(_REMOTE_PREFIXES)


def check_source_pattern(source: str) -> str:
    """The source cleaned (`./src//a/../b` → `src/b`, the root → `.`), checked without
    touching the disk; globs are kept as they are."""
    if not source:
        raise UnsafePath("empty COPY source")
    if "\x00" in source:
        raise UnsafePath(f"COPY source {source!r} contains a NUL byte")
    if source.startswith("/"):
        raise UnsafePath(f"COPY source {source!r} is an absolute path; sources are relative "
                         "to the build context")
    cleaned = go_clean(source)
    if cleaned == ".." or cleaned.startswith("../"):
        raise UnsafePath(f"COPY source {source!r} is outside the build context")
    return cleaned


def resolve_in_context(root: Path, source: str, *, follow_last: bool = True) -> Path:
    """The real path of `source` under `root`, following symlinks inside the context.
    The last component is kept as a symlink when `follow_last` is False. A path that does
    not exist is returned as it would be (the caller reports the missing file)."""
    cleaned = check_source_pattern(source)
    todo: deque[str] = deque(p for p in cleaned.split("/") if p not in ("", "."))
    resolved: list[str] = []
    hops = 0
    while todo:
        part = todo.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                raise UnsafePath(f"COPY source {source!r} leads outside the build context")
            resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        if candidate.is_symlink() and (follow_last or todo):
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise UnsafePath(f"COPY source {source!r}: too many levels of symlinks")
            target = os.readlink(candidate)
            link = "/".join([*resolved, part])
            if target.startswith("/"):
                raise UnsafePath(f"COPY source {source!r}: {link} is a symlink to {target}, "
                                 "an absolute path outside the build context")
            depth = len(resolved)
            for piece in target.split("/"):
                if piece == "..":
                    depth -= 1
                    if depth < 0:
                        raise UnsafePath(f"COPY source {source!r}: {link} is a symlink to "
                                         f"{target}, outside the build context")
                elif piece not in ("", "."):
                    depth += 1
            todo.extendleft(reversed(target.split("/")))
            continue
        resolved.append(part)
    return root.joinpath(*resolved)


def has_glob(source: str) -> bool:
    return any(ch in source for ch in "*?[")


def expand_sources(root: Path, source: str) -> list[str]:
    """The context paths a COPY source names, sorted: the cleaned path itself when it has
    no glob characters (the caller reports it missing), else every path at the pattern's
    depth that matches it with Go's filepath.Match rules (`*` and `?` stay within one
    component). Directories are not followed through symlinks while matching; resolve each
    result with resolve_in_context before reading it."""
    cleaned = check_source_pattern(source)
    if not has_glob(cleaned):
        return [cleaned]
    parts = cleaned.split("/")
    try:
        regexes = [glob_regex(part) for part in parts]
    except IgnoreError as exc:
        raise SourceError(f"COPY source {source!r}: {exc.message}") from None
    found: list[str] = []

    def walk(rel: str, depth: int) -> None:
        directory = root / rel if rel else root
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return
        for name in names:
            if not regexes[depth].match(name):
                continue
            path = f"{rel}/{name}" if rel else name
            if depth == len(parts) - 1:
                found.append(path)
            elif (root / path).is_dir() and not (root / path).is_symlink():
                walk(path, depth + 1)

    walk("", 0)
    return found
