"""Errors of the builder. Every one is a `skiff.build.BuildError`, so the CLI prints the
front half's errors (DockerfileError, UnsafePath) and the builder's alike."""

from __future__ import annotations

from collections.abc import Sequence

from skiff.build.errors import BuildError as _FrontBuildError


class BuildError(_FrontBuildError):
    """A step that could not be done: `Dockerfile:7: RUN make: exit code 2`. `line` is
    None for problems of the whole build (a base image that cannot be found)."""

    def __init__(self, source: str, line: int | None, message: str, *,
                 exit_code: int | None = None, output: Sequence[str] = ()) -> None:
        self.source = source
        self.line = line
        self.message = message
        self.exit_code = exit_code
        self.output = tuple(output)  # the last lines a failing RUN printed
        where = f"{source}:{line}" if line is not None else source
        text = f"{where}: {message}"
        if self.output:
            text += "\n" + "\n".join(f"  | {x}" for x in self.output)
        super().__init__(text)


class RunFailed(Exception):
    """A RUN's process exited non-zero (the builder turns it into a BuildError with the
    Dockerfile line)."""

    def __init__(self, exit_code: int, output: Sequence[str]) -> None:
        self.exit_code = exit_code
        self.output = tuple(output)
        super().__init__(f"exit code {exit_code}")
