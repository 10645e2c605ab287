"""YAML to plain data, remembering where every key and value came from.

PyYAML's composer gives a node tree with marks; we build the data ourselves so that we
keep a map from key path to (line, column), refuse duplicate keys (compose does), and
bound the work an alias bomb could make us do. Merge keys (``<<``) are resolved with
the loader's own flatten_mapping, so anchors and merges behave as in compose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from skiff.manifest.errors import ManifestError, Problem, format_path

Path = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """YAML 1.1's sexagesimal numbers (``22:22`` is 1342) are gone, as in compose's
    YAML 1.2 parser: an unquoted port mapping stays a string."""


_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)"
                     r"|[-+]?0x[0-9a-fA-F_]+)$"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    _FLOAT, re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
                       r"|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)"
                       r"|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))
# Far above any real compose file, far below what an alias bomb would expand to.
MAX_NODES = 200_000
MAX_DEPTH = 64


@dataclass
class Positions:
    """(line, column), 1-based, of each value, and of each mapping key by its path."""

    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def of_value(self, path: Path) -> tuple[int, int] | None:
        while True:
            if path in self.values:
                return self.values[path]
            if not path:
                return None
            path = path[:-1]

    def of_key(self, path: Path) -> tuple[int, int] | None:
        return self.keys.get(path) or self.of_value(path)


class _Builder:
    def __init__(self, loader: _Loader, source: str) -> None:
        self.loader = loader
        self.source = source
        self.positions = Positions()
        self.count = 0

    def fail(self, node: yaml.Node, path: Path, message: str) -> ManifestError:
        mark = node.start_mark
        return ManifestError([Problem(self.source, mark.line + 1, mark.column + 1,
                                      format_path(path), message)])

    def build(self, node: yaml.Node, path: Path, stack: tuple[int, ...]) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(node, path, f"document too complex (over {MAX_NODES} values "
                                        "after expanding aliases)")
        if len(path) > MAX_DEPTH:
            raise self.fail(node, path, f"nested deeper than {MAX_DEPTH} levels")
        if id(node) in stack:
            raise self.fail(node, path, "recursive alias")
        self.positions.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, (*stack, id(node)))
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), (*stack, id(node)))
                    for i, item in enumerate(node.value)]
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise self.fail(node, path, f"bad value: {exc}") from None

    def _mapping(self, node: yaml.MappingNode, path: Path, stack: tuple[int, ...]) -> dict:
        try:
            self.loader.flatten_mapping(node)  # resolves << merge keys in place
        except yaml.YAMLError as exc:
            raise self.fail(node, path, f"bad merge key: {exc}") from None
        out: dict[str, Any] = {}
        # flatten_mapping puts merged entries first; later (explicit) keys override them,
        # so only explicit duplicates are errors.
        explicit: set[str] = set()
        merged = len(node.value) - len(getattr(node, "_skiff_explicit", node.value))
        for i, (key_node, value_node) in enumerate(node.value):
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, path, "keys must be plain strings")
            key = self.loader.construct_object(key_node)
            if key is None or isinstance(key, list | dict):
                raise self.fail(key_node, path, "keys must be plain strings")
            key = str(key) if not isinstance(key, bool) else str(key).lower()
            if i >= merged:
                if key in explicit:
                    raise self.fail(key_node, (*path, key), f"duplicate key {key!r}")
                explicit.add(key)
            self.positions.keys[(*path, key)] = (key_node.start_mark.line + 1,
                                                 key_node.start_mark.column + 1)
            out[key] = self.build(value_node, (*path, key), stack)
        return out


def parse(text: str, source: str) -> tuple[Any, Positions]:
    """Parse one YAML document into plain data and its positions."""
    loader = _Loader(text)
    try:
        node = _compose(loader, source)
        if node is None:
            return None, Positions()
        builder = _Builder(loader, source)
        return builder.build(node, (), ()), builder.positions
    finally:
        loader.dispose()


def _compose(loader: _Loader, source: str) -> yaml.Node | None:
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or str(exc)
        if exc.context:
            message = f"{exc.context}, {message}"
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        raise ManifestError([Problem(source, line, column, "", f"invalid YAML: {message}")]
                            ) from None
    except yaml.YAMLError as exc:
        raise ManifestError([Problem(source, None, None, "", f"invalid YAML: {exc}")]) from None
    if node is not None:
        _mark_explicit(node, set())
    return node


def _mark_explicit(node: yaml.Node, seen: set[int]) -> None:
    """Remember each mapping's own entries before merges are flattened into it."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        node._skiff_explicit = [(k, v) for k, v in node.value  # type: ignore[attr-defined]
                                if k.tag != "tag:yaml.org,2002:merge"]
        for k, v in node.value:
            _mark_explicit(k, seen)
            _mark_explicit(v, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _mark_explicit(item, seen)
