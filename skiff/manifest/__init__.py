"""Compose manifests → validated, typed AppSpec, with errors that say where.

Steps: size check → YAML with positions (yamlpos) → interpolation of string values from
the environment and the `.env` beside the file (interpolate, dotenv) → JSON Schema for
structure (schema) → normalisation for meaning (normalize, services). The server runs
only the last two, on the compose document the CLI made with ``to_compose``
(``load_document``). Whatever the input, the only exception that leaves is ManifestError.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skiff.manifest.compose_out import to_compose
from skiff.manifest.convert import Collector, TooManyProblems
from skiff.manifest.dotenv import parse_dotenv
from skiff.manifest.errors import KeyPath, ManifestError, Problem, format_path
from skiff.manifest.interpolate import InterpolationError, Interpolator
from skiff.manifest.merge import merge_documents
from skiff.manifest.normalize import MAX_SERVICES, normalize, project_name_from
from skiff.manifest.schema import validate
from skiff.manifest.services import MAX_REPLICAS
from skiff.manifest.units import parse_bytes, parse_duration
from skiff.manifest.unsupported import set_aside
from skiff.manifest.yamlpos import MAX_DEPTH, MAX_NODES, Positions, parse
from skiff.models.appspec import AppSpec

MAX_MANIFEST_BYTES = 1024 * 1024  # a manifest (and its .env) may be at most 1 MiB

__all__ = [
    "MAX_MANIFEST_BYTES", "MAX_REPLICAS", "MAX_SERVICES", "LoadResult", "ManifestError",
    "Problem", "load_document", "load_file", "load_files", "load_text", "parse_bytes",
    "parse_duration",
    "project_name_from", "to_compose",
]


@dataclass(frozen=True)
class LoadResult:
    app: AppSpec
    warnings: list[str] = field(default_factory=list)  # "file:line:col path: message"


class _Located:
    """Turns key paths into Problems with the line and column they came from."""

    def __init__(self, source: str, positions: Positions) -> None:
        self.source = source
        self.positions = positions

    def problem(self, path: KeyPath, message: str, at_key: bool = False) -> Problem:
        where = self.positions.of_key(path) if at_key else self.positions.of_value(path)
        line, column = where if where else (None, None)
        return Problem(self.source, line, column, format_path(path), message)

    def error(self, found: list[tuple[KeyPath, bool, str]]) -> ManifestError:
        problems = [self.problem(path, message, at_key) for path, at_key, message in found]
        # In file order; problems without a position (whole document) first.
        problems.sort(key=lambda p: (p.line or 0, p.column or 0))
        return ManifestError(problems)


class _MergedLocated(_Located):
    """Positions across several merged files: a path is placed in the file that says the
    most about it (the longest located prefix; the later file on a tie)."""

    def __init__(self, files: list[_Located]) -> None:
        super().__init__(", ".join(f.source for f in files), Positions())
        self.files = files

    def problem(self, path: KeyPath, message: str, at_key: bool = False) -> Problem:
        best, depth = self.files[-1], -1
        for located in self.files:
            known = located.positions.values.keys() | located.positions.keys.keys()
            d = max((n for n in range(len(path) + 1) if path[:n] in known), default=-1)
            if d >= depth:
                best, depth = located, d
        return best.problem(path, message, at_key)


def _whole(source: str, message: str) -> ManifestError:
    return ManifestError([Problem(source, None, None, "", message)])


class _Interpolation:
    """Interpolates every string value of a document (never keys), recording errors and
    the first use of each unset variable by key path."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.interp = Interpolator(environ)
        self.errors: list[tuple[KeyPath, bool, str]] = []
        self.unset: list[tuple[KeyPath, str]] = []

    def __call__(self, doc: Any, path: KeyPath = ()) -> Any:
        if isinstance(doc, str):
            if "$" not in doc:
                return doc
            known = len(self.interp.unset)
            try:
                value = self.interp(doc)
            except InterpolationError as exc:
                self.errors.append((path, False, str(exc)))
                return doc
            self.unset += [(path, name) for name in self.interp.unset[known:]]
            return value
        if isinstance(doc, dict):
            return {k: self(v, (*path, k)) for k, v in doc.items()}
        if isinstance(doc, list):
            return [self(v, (*path, i)) for i, v in enumerate(doc)]
        return doc


def _check_and_normalize(doc: Any, where: _Located, *, base_dir: Path | None,
                         environ: Mapping[str, str] | None, project_name: str | None,
                         warnings: list[str], strict: bool = False) -> LoadResult:
    if doc is None:
        raise _whole(where.source, "the manifest is empty; it needs at least a services key")
    if not isinstance(doc, dict):
        kind = "a list" if isinstance(doc, list) else f"a single value ({type(doc).__name__})"
        raise where.error([((), False, f"the top level must be a mapping of keys (services, "
                                       f"networks, ...), not {kind}")])
    doc = copy.deepcopy(doc)
    unsupported = set_aside(doc)
    if strict and unsupported:
        raise where.error([(path, True, f"{message} (--strict)")
                           for path, message in unsupported])
    warnings += [str(where.problem(path, message, at_key=True))
                 for path, message in unsupported]
    structural = validate(doc)
    if structural:
        raise where.error(structural)
    collector = Collector()
    try:
        app = normalize(doc, collector, base_dir=base_dir, environ=environ,
                        project_name=project_name)
    except TooManyProblems:  # a hopeless document: report the first MAX_PROBLEMS
        raise where.error(collector.problems) from None
    if collector.problems:
        raise where.error(collector.problems)
    warnings += [str(where.problem(path, message)) for path, message in collector.warnings]
    return LoadResult(app, warnings)


def _decode(data: str | bytes, source: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")  # a BOM from Windows editors is harmless
    except UnicodeDecodeError as exc:
        raise _whole(source, f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None


def _read_limited(path: Path, source: str) -> str:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise _whole(source, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise _whole(source, f"larger than the limit of {MAX_MANIFEST_BYTES} bytes (1 MiB)")
    return _decode(data, source)


def _environment(base_dir: Path | None, environ: Mapping[str, str] | None) -> dict[str, str]:
    """The `.env` beside the manifest, overridden by the process environment."""
    env: dict[str, str] = {}
    dotenv = base_dir / ".env" if base_dir is not None else None
    if dotenv is not None and dotenv.is_file():
        values, problems = parse_dotenv(_read_limited(dotenv, str(dotenv)), str(dotenv))
        if problems:
            raise ManifestError(problems)
        env.update(values)
    env.update(os.environ if environ is None else environ)
    return env


def _load_text(text: str | bytes, source: str, base_dir: Path | None,
               environ: Mapping[str, str] | None, project_name: str | None,
               strict: bool = False) -> LoadResult:
    if len(text) > MAX_MANIFEST_BYTES or (
            isinstance(text, str) and len(text.encode("utf-8", "surrogatepass"))
            > MAX_MANIFEST_BYTES):
        raise _whole(source, f"larger than the limit of {MAX_MANIFEST_BYTES} bytes (1 MiB)")
    doc, positions = parse(_decode(text, source), source)
    where = _Located(source, positions)
    env = _environment(base_dir, environ)
    interpolation = _Interpolation(env)
    doc = interpolation(doc)
    if interpolation.errors:
        raise where.error(interpolation.errors)
    warnings = [str(where.problem(path, f'variable "{name}" is not set; using an empty '
                                        "string")) for path, name in interpolation.unset]
    return _check_and_normalize(doc, where, base_dir=base_dir, environ=env,
                                project_name=project_name, warnings=warnings, strict=strict)


def load_text(text: str | bytes, source: str, base_dir: Path | None,
              environ: Mapping[str, str] | None = None,
              project_name: str | None = None, strict: bool = False) -> LoadResult:
    """Load a compose file's text. ``source`` names it in messages; ``base_dir`` is its
    folder, where `.env` is read and relative bind sources point (None: neither);
    ``environ`` defaults to the process environment; ``project_name`` overrides the
    file's ``name``; ``strict`` makes compose keys skiff does not implement errors
    rather than warnings."""
    return _guarded(source, lambda: _load_text(text, source, base_dir, environ, project_name,
                                               strict))


def load_file(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None,
              project_name: str | None = None, strict: bool = False) -> LoadResult:
    """Load a compose file; its folder holds `.env` and anchors relative bind sources."""
    source = str(path)

    def run() -> LoadResult:
        file = Path(path)
        text = _read_limited(file, source)
        return _load_text(text, source, file.absolute().parent, environ, project_name,
                          strict)
    return _guarded(source, run)


def load_files(paths: list[str | os.PathLike[str]],
               environ: Mapping[str, str] | None = None, project_name: str | None = None,
               strict: bool = False) -> LoadResult:
    """Several compose files merged in order, as `docker compose -f a -f b` does
    (skiff/manifest/merge.py). The first file's folder is the project's: its `.env` is
    read and relative paths in every file are resolved there, as compose does."""
    if len(paths) == 1:
        return load_file(paths[0], environ, project_name, strict)
    sources = ", ".join(str(p) for p in paths)

    def run() -> LoadResult:
        base = Path(paths[0]).absolute().parent
        env = _environment(base, environ)
        docs, files, warnings = [], [], []
        for path in paths:
            source = str(path)
            doc, positions = parse(_read_limited(Path(path), source), source)
            where = _Located(source, positions)
            interpolation = _Interpolation(env)
            docs.append(interpolation(doc))
            if interpolation.errors:
                raise where.error(interpolation.errors)
            # Each file must be a valid compose file on its own, as compose checks them,
            # so a mistake in one is never hidden by what a later one overrides.
            alone = copy.deepcopy(docs[-1])
            if isinstance(alone, dict):
                set_aside(alone)
                structural = validate(alone, partial=True)
                if structural:
                    raise where.error(structural)
            warnings += [str(where.problem(p, f'variable "{name}" is not set; using an '
                                              "empty string")) for p, name in
                         interpolation.unset]
            files.append(where)
        return _check_and_normalize(merge_documents(docs), _MergedLocated(files),
                                    base_dir=base, environ=env, project_name=project_name,
                                    warnings=warnings, strict=strict)
    return _guarded(sources, run)


def load_document(doc: Any, source: str = "<api>") -> LoadResult:
    """Validate and normalise a compose document that arrived as data: no YAML, no
    interpolation, no `.env`, no base folder (bind sources must be absolute)."""
    def run() -> LoadResult:
        _check_plain(doc, source)
        return _check_and_normalize(doc, _Located(source, Positions()), base_dir=None,
                                    environ=None, project_name=None, warnings=[])
    return _guarded(source, run)


def _check_plain(doc: Any, source: str) -> None:
    """JSON-shaped data only (string keys; str, int, float, bool, None, list, dict),
    bounded like a YAML file, so the checks after it can rely on that."""
    count = 0
    todo: list[tuple[Any, KeyPath]] = [(doc, ())]
    while todo:
        value, path = todo.pop()
        count += 1
        if count > MAX_NODES or len(path) > MAX_DEPTH:
            raise _whole(source, f"document too large or nested too deeply (limits: "
                                 f"{MAX_NODES} values, {MAX_DEPTH} levels)")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ManifestError([Problem(source, None, None, format_path(path),
                                                 f"key {key!r} is not a string")])
                todo.append((item, (*path, key)))
        elif isinstance(value, list):
            todo.extend((item, (*path, i)) for i, item in enumerate(value))
        elif not isinstance(value, str | int | float | bool | type(None)):
            raise ManifestError([Problem(source, None, None, format_path(path),
                                         f"unsupported value of type {type(value).__name__}")])


def _guarded(source: str, run: Any) -> LoadResult:
    """The loader's promise: only ManifestError leaves. A bug that breaks it still gives
    the user a located, reportable message instead of a traceback (and the fuzz tests
    fail on the word "internal")."""
    try:
        result: LoadResult = run()
        return result
    except ManifestError:
        raise
    except RecursionError:
        raise _whole(source, "document nested too deeply") from None
    except Exception as exc:
        raise _whole(source, f"internal error in the manifest loader ({type(exc).__name__}: "
                             f"{exc}); please report it") from exc
