"""Errors of the build front half. Each names where the problem is (Dockerfile:LINE, the
.dockerignore line, the context path) so the CLI can print it as is."""

from __future__ import annotations


class BuildError(Exception):
    """Base of every error of skiff.build."""


class DockerfileError(BuildError, ValueError):
    """A Dockerfile that does not parse, or an instruction that cannot be expanded:
    `Dockerfile:7: unknown instruction COPPY (did you mean COPY?)`."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        self.source = source
        self.line = line  # 1-based; None for problems of the whole file (no FROM, --target)
        self.message = message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")


class IgnoreError(BuildError, ValueError):
    """A .dockerignore line Docker would refuse: a bare `!`, a bad `[` class."""

    def __init__(self, source: str, line: int, message: str) -> None:
        self.source = source
        self.line = line
        self.message = message
        super().__init__(f"{source}:{line}: {message}")


class ContextError(BuildError):
    """The build context cannot be packed: missing directory, a file that changed or
    vanished while it was being packed."""


class ContextTooLarge(ContextError):
    """The context is over the size limit; raised while walking, before any upload."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"build context is over the {format_size(limit)} limit ({limit} bytes): at least "
            f"{size} bytes of files; exclude large files with .dockerignore or raise the "
            "limit")


class SourceError(BuildError, ValueError):
    """A COPY/ADD source that cannot be used: a bad glob, or (UnsafePath) outside the
    context."""


class UnsafePath(SourceError):
    """A COPY/ADD source that would read outside the context: absolute, `..` escaping the
    root, or a symlink leading out."""


def format_size(n: int) -> str:
    """1073741824 → `1 GiB`; 1536 → `1.5 KiB`: limits read as people set them."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            text = f"{size:.1f}".rstrip("0").rstrip(".")
            return f"{text} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
