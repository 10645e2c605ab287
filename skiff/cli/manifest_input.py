"""Reading the manifest a command names with -f (a path, or - for standard input)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from skiff.cli.context import CliError
from skiff.manifest import LoadResult, ManifestError, load_file, load_text


def load(path: str, project_name: str | None = None) -> LoadResult:
    try:
        if path == "-":
            return load_text(sys.stdin.read(), "<stdin>", Path.cwd(), dict(os.environ),
                             project_name=project_name)
        if not Path(path).is_file():
            raise CliError(f"{path}: no such file")
        return load_file(Path(path), project_name=project_name)
    except ManifestError as exc:
        raise CliError(str(exc)) from None


def warn(result: LoadResult) -> None:
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
