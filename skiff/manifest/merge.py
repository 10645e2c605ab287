"""Several compose files as one, as `docker compose -f a.yml -f b.yml` merges them: later
files override earlier ones. Pure; works on the documents after interpolation.

- Mappings merge key by key; a scalar in a later file replaces the earlier one.
- `command`, `entrypoint` and a healthcheck's `test` are replaced whole.
- `environment`, `labels`, `build.args`, `deploy.labels`, `extra_hosts`-like maps given as
  lists (`K=V`) or mappings merge as mappings.
- `ports` merge by container port (and protocol), `volumes` and `tmpfs` by target: a
  later entry for the same target replaces the earlier one.
- A service's `networks` and `depends_on`, as lists or mappings, merge as mappings.
- `build` given short (`./dir`) in one file and long in another merges as the long form,
  the short one being its `context`.
- Other lists (`cap_add`, `profiles`, ...) are joined, without repeats.
"""

from __future__ import annotations

import copy
from typing import Any

REPLACED = frozenset({"command", "entrypoint"})
MAPLIKE = frozenset({"environment", "labels", "args", "sysctls", "annotations"})
NAMED_LISTS = frozenset({"networks", "depends_on"})


def _as_map(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    out: dict[str, Any] = {}
    for item in value or []:
        key, sep, val = str(item).partition("=")
        out[key] = val if sep else None
    return out


def _names(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    return {str(v): None for v in value or []}


def _port_key(entry: Any) -> str:
    if isinstance(entry, dict):
        return f"{entry.get('target')}/{entry.get('protocol', 'tcp')}"
    text = str(entry)
    proto = "tcp"
    if "/" in text:
        text, proto = text.rsplit("/", 1)
    return f"{text.rsplit(':', 1)[-1]}/{proto}"


def _mount_key(entry: Any) -> str:
    if isinstance(entry, dict):
        return str(entry.get("target"))
    parts = str(entry).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _by_key(old: Any, new: Any, key: Any) -> list[Any]:
    merged: dict[str, Any] = {key(e): e for e in (old or [])}
    for entry in new or []:
        merged.pop(key(entry), None)  # the later one, in the later file's order
        merged[key(entry)] = entry
    return list(merged.values())


def _long_build(value: Any) -> Any:
    return {"context": value} if isinstance(value, str) else value


def _merge_value(key: str, old: Any, new: Any) -> Any:
    if old is None or key in REPLACED:
        return copy.deepcopy(new)
    if key == "build" and isinstance(old, dict) != isinstance(new, dict):
        # compose reads `build: ./dir` as `build: {context: ./dir}` before merging.
        old, new = _long_build(old), _long_build(new)
    if key in MAPLIKE:
        return {**_as_map(old), **_as_map(new)}
    if key in NAMED_LISTS and (isinstance(old, list) or isinstance(new, list)):
        return _merge_maps(_names(old), _names(new))
    if key == "ports":
        return _by_key(old, new, _port_key)
    if key in ("volumes", "tmpfs") and isinstance(old, list) and isinstance(new, list):
        return _by_key(old, new, _mount_key)
    if isinstance(old, dict) and isinstance(new, dict):
        return _merge_maps(old, new)
    if isinstance(old, list) and isinstance(new, list):
        return old + [v for v in new if v not in old]
    return copy.deepcopy(new)


def _merge_maps(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(old)
    for key, value in new.items():
        if key == "test":  # a healthcheck's command
            out[key] = copy.deepcopy(value)
        else:
            out[key] = _merge_value(key, out.get(key), value)
    return out


def merge_documents(docs: list[Any]) -> Any:
    """The documents merged in order; a document that is not a mapping is returned as
    the first non-mapping found (the loader reports it)."""
    merged: dict[str, Any] = {}
    for doc in docs:
        if not isinstance(doc, dict):
            return doc
        merged = _merge_maps(merged, doc)
    return merged
