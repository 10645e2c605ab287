"""Structural validation against schemas/manifest.schema.json, in plain words.

jsonschema's own messages quote whole sub-documents; users need "unknown key
"colour"" at the key's line, or "expected an integer, got "three"".
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from skiff.manifest.errors import MAX_PROBLEMS, KeyPath, quote

_HERE = Path(__file__).resolve()
_CANDIDATES = (
    _HERE.parents[2] / "schemas" / "manifest.schema.json",  # a source checkout
    _HERE.parents[1] / "_schemas" / "manifest.schema.json",  # an installed wheel
)
_TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number",
               "boolean": "true or false", "null": "null", "array": "a list",
               "object": "a mapping"}

Located = tuple[KeyPath, bool, str]  # path, at the key (not value), message


@functools.cache
def manifest_schema() -> dict[str, Any]:
    for path in _CANDIDATES:
        if path.exists():
            return json.loads(path.read_text())
    raise FileNotFoundError("manifest.schema.json not found in " +
                            ", ".join(str(p) for p in _CANDIDATES))


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """The schema with each local ``$ref`` replaced by its definition: the published file
    keeps $defs for readers, while resolving references on every value was a third of
    the validation time."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            siblings = {k: v for k, v in node.items() if k != "$ref"}  # e.g. a description
            return {**_inline(defs[ref.removeprefix("#/$defs/")], defs), **siblings}
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = manifest_schema()
    return jsonschema.Draft202012Validator(_inline(schema, schema.get("$defs", {})))


def _show(value: Any) -> str:
    return quote(value)


def _types(schema: dict[str, Any]) -> list[str]:
    t = schema.get("type")
    if isinstance(t, list):
        return t
    if isinstance(t, str):
        return [t]
    if "enum" in schema:
        return ["one of " + ", ".join(json.dumps(v) for v in schema["enum"])]
    out: list[str] = []
    for branch in schema.get("oneOf", []):
        out += _types(branch)
    return out


def _expected(schema: dict[str, Any]) -> str:
    words = []
    for t in _types(schema):
        word = _TYPE_WORDS.get(t, t)
        if word not in words:
            words.append(word)
    return " or ".join(words) or "something else"


def _translate(error: ValidationError) -> Iterator[Located]:
    path = tuple(error.absolute_path)
    kind = error.validator
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        patterns = list(error.schema.get("patternProperties", {}))
        for key in error.instance:
            if key not in known and not any(re.search(p, key) for p in patterns):
                yield (*path, key), True, f'unknown key "{key}"'
    elif kind == "required":
        for key in error.validator_value:
            if isinstance(error.instance, dict) and key not in error.instance:
                yield path, False, f'missing required key "{key}"'
    elif kind == "type":
        yield path, False, f"expected {_expected(error.schema)}, got {_show(error.instance)}"
    elif kind == "enum":
        choices = ", ".join(json.dumps(v) for v in error.validator_value)
        yield path, False, f"{_show(error.instance)} is not one of {choices}"
    elif kind == "oneOf":
        yield from _one_of(error, path)
    elif kind == "minProperties":
        yield path, False, "needs at least one entry"
    elif kind == "minLength":
        yield path, False, "must not be empty"
    elif kind == "uniqueItems":
        yield path, False, "has duplicate entries"
    else:  # not used by the schema today; jsonschema's words, kept short
        yield path, False, error.message[:200]


def _one_of(error: ValidationError, path: KeyPath) -> Iterator[Located]:
    """Report the branch the value was evidently meant for (its type matched), else the
    types that would have been accepted."""
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in error.context or []:
        by_branch.setdefault(sub.schema_path[0], []).append(sub)
    for subs in by_branch.values():
        if not any(s.validator == "type" and not s.relative_path for s in subs):
            for sub in subs:
                yield from _translate(sub)
            return
    yield path, False, f"expected {_expected(error.schema)}, got {_show(error.instance)}"


def validate(doc: Any, partial: bool = False) -> list[Located]:
    """The structural problems in ``doc`` as (path, at_key, message); at most
    MAX_PROBLEMS + 1 of them, so a list of 100,000 wrong items stops early. ``partial``:
    one of several files merged, which may leave out what another file has."""
    found: dict[tuple[KeyPath, str], Located] = {}
    for error in _validator().iter_errors(doc):
        if partial and error.validator in ("required", "minProperties"):
            continue
        for loc in _translate(error):
            found.setdefault((loc[0], loc[2]), loc)
        if len(found) > MAX_PROBLEMS:
            break
    return list(found.values())
