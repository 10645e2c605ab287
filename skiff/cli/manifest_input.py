"""Reading the manifest a command names with -f (a path, or - for standard input)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from skiff.cli.context import CliError
from skiff.manifest import LoadResult, ManifestError, load_files, load_text


def load(paths: str | list[str], project_name: str | None = None,
         strict: bool = False) -> LoadResult:
    """The app in the compose file(s) named with -f (several: merged in order)."""
    files = [paths] if isinstance(paths, str) else list(paths)
    try:
        if files == ["-"]:
            return load_text(sys.stdin.read(), "<stdin>", Path.cwd(), dict(os.environ),
                             project_name=project_name, strict=strict)
        if "-" in files:
            raise CliError("- (standard input) cannot be merged with other files")
        for path in files:
            if not Path(path).is_file():
                raise CliError(f"{path}: no such file")
        return load_files(files, project_name=project_name, strict=strict)
    except ManifestError as exc:
        raise CliError(str(exc)) from None


def warn(result: LoadResult) -> None:
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
