"""Compose manifests → validated, typed AppSpec, with errors that say where.

Steps: size check → YAML with positions → interpolation (environment, then `.env`
beside the file) → JSON Schema (structure) → normalise (meaning). The server runs the
last two on the compose document the CLI sends (``load_document``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skiff.manifest.compose_out import to_compose
from skiff.manifest.dotenv import parse_dotenv
from skiff.manifest.errors import ManifestError, Problem, format_path
from skiff.manifest.interpolate import InterpolationError, Interpolator
from skiff.manifest.normalize import (
    MAX_REPLICAS,
    MAX_SERVICES,
    Collector,
    normalize,
    project_name_from,
)
from skiff.manifest.schema import validate
from skiff.manifest.units import parse_bytes, parse_duration
from skiff.manifest.yamlpos import Positions, parse
from skiff.models.appspec import AppSpec

MAX_MANIFEST_BYTES = 1024 * 1024

__all__ = [
    "MAX_MANIFEST_BYTES", "MAX_REPLICAS", "MAX_SERVICES", "LoadResult", "ManifestError",
    "Problem", "load_document", "load_file", "load_text", "parse_bytes", "parse_duration",
    "to_compose",
]


@dataclass(frozen=True)
class LoadResult:
    app: AppSpec
    warnings: list[str] = field(default_factory=list)


def _problem(source: str, positions: Positions, path: tuple[str | int, ...], message: str,
             at_key: bool = False) -> Problem:
    where = positions.of_key(path) if at_key else positions.of_value(path)
    line, column = where if where else (None, None)
    return Problem(source, line, column, format_path(path), message)


def _interpolate(doc: Any, interp: Interpolator, path: tuple[str | int, ...],
                 errors: list[tuple[tuple[str | int, ...], str]]) -> Any:
    if isinstance(doc, str):
        try:
            return interp(doc)
        except InterpolationError as exc:
            errors.append((path, str(exc)))
            return doc
    if isinstance(doc, dict):
        return {k: _interpolate(v, interp, (*path, k), errors) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_interpolate(v, interp, (*path, i), errors) for i, v in enumerate(doc)]
    return doc


def _check_and_normalize(doc: Any, source: str, positions: Positions, *,
                         base_dir: Path | None, environ: Mapping[str, str] | None,
                         project_name: str | None, warnings: list[str]) -> LoadResult:
    structural = validate(doc)
    if structural:
        raise ManifestError([_problem(source, positions, p, m, k) for p, k, m in structural])
    collector = Collector()
    app = normalize(doc, collector, base_dir=base_dir, environ=environ,
                    project_name=project_name)
    if collector.problems:
        raise ManifestError([_problem(source, positions, p, m, k)
                             for p, k, m in collector.problems])
    return LoadResult(app, warnings + collector.warnings)


def load_text(text: str, source: str, base_dir: Path | None,
              environ: Mapping[str, str] | None = None,
              project_name: str | None = None) -> LoadResult:
    """Load a compose file's text; ``base_dir`` holds `.env` and anchors relative binds."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_MANIFEST_BYTES:
        raise ManifestError([Problem(source, None, None, "",
                                     f"larger than the {MAX_MANIFEST_BYTES} byte limit")])
    doc, positions = parse(text, source)
    env: dict[str, str] = {}
    warnings: list[str] = []
    if base_dir is not None and (base_dir / ".env").is_file():
        dotenv_source = str(base_dir / ".env")
        values, problems = parse_dotenv(_read_limited(base_dir / ".env", dotenv_source),
                                        dotenv_source)
        if problems:
            raise ManifestError(problems)
        env.update(values)
    env.update(os.environ if environ is None else environ)
    interp = Interpolator(env)
    errors: list[tuple[tuple[str | int, ...], str]] = []
    doc = _interpolate(doc, interp, (), errors)
    if errors:
        raise ManifestError([_problem(source, positions, p, m) for p, m in errors])
    warnings += [f'variable "{name}" is not set; using an empty string'
                 for name in interp.unset]
    return _check_and_normalize(doc, source, positions, base_dir=base_dir, environ=env,
                                project_name=project_name, warnings=warnings)


def _read_limited(path: Path, source: str) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise ManifestError([Problem(source, None, None, "", f"{size} bytes is larger "
                                         f"than the {MAX_MANIFEST_BYTES} byte limit")])
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError([Problem(source, None, None, "",
                                     f"not UTF-8 text: {exc.reason} at byte {exc.start}")]
                            ) from None
    except OSError as exc:
        raise ManifestError([Problem(source, None, None, "",
                                     f"cannot read: {exc.strerror}")]) from None


def load_file(path: Path, environ: Mapping[str, str] | None = None,
              project_name: str | None = None) -> LoadResult:
    source = str(path)
    text = _read_limited(path, source)
    base_dir = path.resolve().parent
    return load_text(text, source, base_dir, environ, project_name)


def load_document(doc: Any, source: str = "<api>") -> LoadResult:
    """Validate and normalise a compose document that arrived as data (no YAML, no
    interpolation, no `.env`, no base folder: bind sources must be absolute)."""
    return _check_and_normalize(doc, source, Positions(), base_dir=None, environ=None,
                                project_name=None, warnings=[])


__all__ += ["project_name_from"]
