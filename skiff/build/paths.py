"""Go's filepath.Clean for /-separated paths: .dockerignore patterns are cleaned with it
before matching, and COPY sources are checked on the cleaned form."""

from __future__ import annotations


def go_clean(path: str) -> str:
    """Lexical clean as Go does: `a//b/./c/..` → `a/b`, `/../x` → `/x`, `` → `.`.
    Unlike posixpath.normpath, a leading `//` becomes `/`."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")  # a relative path may climb; a rooted one stops at /
            continue
        parts.append(part)
    joined = "/".join(parts)
    if rooted:
        return "/" + joined
    return joined or "."
