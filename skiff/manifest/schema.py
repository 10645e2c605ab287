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

_HERE = Path(__file__).resolve()
_CANDIDATES = (
    _HERE.parents[2] / "schemas" / "manifest.schema.json",  # a source checkout
    _HERE.parents[1] / "_schemas" / "manifest.schema.json",  # an installed wheel
)
_TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number",
               "boolean": "true or false", "null": "null", "array": "a list",
               "object": "a mapping"}

Located = tuple[tuple[str | int, ...], bool, str]  # path, at the key (not value), message


@functools.cache
def manifest_schema() -> dict[str, Any]:
    for path in _CANDIDATES:
        if path.exists():
            return json.loads(path.read_text())
    raise FileNotFoundError("manifest.schema.json not found in " +
                            ", ".join(str(p) for p in _CANDIDATES))


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(manifest_schema())


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _show(value: Any) -> str:
    if isinstance(value, dict | list):
        return _TYPE_WORDS[_json_type(value)]
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


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
    elif kind == "uniqueItems":
        yield path, False, "has duplicate entries"
    else:
        yield path, False, error.message


def _one_of(error: ValidationError, path: tuple[str | int, ...]) -> Iterator[Located]:
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


def validate(doc: Any) -> list[Located]:
    """Every structural problem in ``doc``, as (path, at_key, message), in path order."""
    found: dict[tuple[tuple[str | int, ...], str], Located] = {}
    for error in _validator().iter_errors(doc):
        for loc in _translate(error):
            found.setdefault((loc[0], loc[2]), loc)
    return sorted(found.values(), key=lambda loc: [str(p) for p in loc[0]])
