"""YAML to plain data, remembering where every key and value came from.

PyYAML's composer gives a node tree with marks; we build the data ourselves so that we
keep a map from key path to (line, column), refuse duplicate keys (compose does), and
bound the work an alias bomb or a deeply nested document could make us do. Merge keys
(``<<``) are resolved here too (see _Builder._entries).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from skiff.manifest.errors import KeyPath, ManifestError, Problem, format_path

# Far above any real compose file (200 services of 250 values each), far below what an
# alias bomb would expand to, and small enough to validate in about a second.
MAX_NODES = 50_000
MAX_DEPTH = 64

_TAG = "tag:yaml.org,2002:"
_NULL, _BOOL, _INT, _FLOAT, _STR = (_TAG + t for t in ("null", "bool", "int", "float", "str"))
_MERGE, _MAP, _SEQ = _TAG + "merge", _TAG + "map", _TAG + "seq"
_PLAIN_TYPES = (str, int, float, bool, type(None))


class _Loader(yaml.SafeLoader):
    """Scalars resolve as in compose's YAML 1.2 parser, not PyYAML's YAML 1.1: ``yes``,
    ``on`` and ``off`` stay strings, ``22:22`` is not the sexagesimal 1342 (so an unquoted
    port mapping stays a string), dates stay strings, and ``=`` is just text."""

    def __init__(self, stream: str | bytes) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        # The composer recurses once per level; stop long before Python's recursion limit.
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                    self.peek_event().start_mark)
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self.depth -= 1


_KEEP = (_NULL, _MERGE)
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag in _KEEP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))
# PyYAML's own int and float patterns without the sexagesimal forms: a string that reads
# as a number here also reads as one to yaml.safe_dump, which then quotes it, so what
# `skiff config` prints loads back unchanged.
_Loader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)"
                     r"|[-+]?0x[0-9a-fA-F_]+)$"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    _FLOAT, re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
                       r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)"
                       r"|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))


@dataclass
class Positions:
    """(line, column), 1-based, of each value, and of each mapping key by its path."""

    values: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)

    def of_value(self, path: KeyPath) -> tuple[int, int] | None:
        """Where the value at ``path`` is, or its nearest located ancestor."""
        while True:
            if path in self.values:
                return self.values[path]
            if not path:
                return None
            path = path[:-1]

    def of_key(self, path: KeyPath) -> tuple[int, int] | None:
        return self.keys.get(path) or self.of_value(path)


def _short(tag: str) -> str:
    return tag.replace(_TAG, "!!")


def _at(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    def __init__(self, loader: _Loader, source: str) -> None:
        self.loader = loader
        self.source = source
        self.positions = Positions()
        self.count = 0
        self.entries: dict[int, dict[str, tuple[Node, Node]]] = {}
        self.merging: set[int] = set()
        self.merged_total = 0

    def fail(self, node: Node, path: KeyPath, message: str) -> ManifestError:
        line, column = _at(node)
        return ManifestError([Problem(self.source, line, column, format_path(path), message)])

    def build(self, node: Node, path: KeyPath, stack: frozenset[int]) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(node, path, f"document too large or too complex (over {MAX_NODES}"
                                        " values after expanding aliases)")
        if len(path) > MAX_DEPTH:
            raise self.fail(node, path, f"nested deeper than {MAX_DEPTH} levels")
        if id(node) in stack:
            raise self.fail(node, path, "recursive alias: a value contains itself")
        self.positions.values[path] = _at(node)
        if isinstance(node, MappingNode):
            if node.tag not in (_MAP, _TAG + "set"):
                raise self.fail(node, path, f"YAML tag {_short(node.tag)} is not supported here")
            return self._mapping(node, path, stack | {id(node)})
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ:
                raise self.fail(node, path, f"YAML tag {_short(node.tag)} is not supported here")
            inner = stack | {id(node)}
            return [self.build(item, (*path, i), inner) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _scalar(self, node: Node, path: KeyPath) -> Any:
        if node.tag == _MERGE:  # "<<" used as a value, not as a key: just text
            return node.value
        try:
            value = self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            # Bad explicit tags (!!int abc), unknown tags (!foo), numbers too long.
            if node.tag == _INT and len(node.value) > 100:
                problem = "a number with too many digits"
            else:
                problem = getattr(exc, "problem", None) or str(exc)
            raise self.fail(node, path, f"bad value: {problem}") from None
        if not isinstance(value, _PLAIN_TYPES):
            raise self.fail(node, path, f"YAML tag {_short(node.tag)} is not supported here")
        return value

    def _mapping(self, node: MappingNode, path: KeyPath, stack: frozenset[int]) -> dict:
        out: dict[str, Any] = {}
        try:
            entries = self._entries(node, path)
        except RecursionError:  # a long chain of mappings, each merging the one before
            raise self.fail(node, path, "merge keys chained too deeply") from None
        for key, (key_node, value_node) in entries.items():
            self.positions.keys[(*path, key)] = _at(key_node)
            out[key] = self.build(value_node, (*path, key), stack)
        return out

    def _entries(self, node: MappingNode, path: KeyPath) -> dict[str, tuple[Node, Node]]:
        """The mapping's entries after ``<<`` merges: keys written in the mapping win over
        merged ones, and earlier merge sources win over later ones (the YAML merge spec).

        Not the loader's flatten_mapping: PyYAML 6 drops merged keys by the id() of the
        key string, so an override inside a merge source can be lost. Results are cached
        per node, and their total size is bounded, so merge chains cannot blow up."""
        cached = self.entries.get(id(node))
        if cached is not None:
            return cached
        if id(node) in self.merging:
            raise self.fail(node, path, "recursive merge: a mapping merges itself")
        self.merging.add(id(node))
        merged: dict[str, tuple[Node, Node]] = {}
        own: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                sources = value_node.value if isinstance(value_node, SequenceNode) \
                    else [value_node]
                for source in sources:
                    if not isinstance(source, MappingNode):
                        raise self.fail(source, path, "<< merges a mapping or a list of "
                                                      "mappings")
                    for key, entry in self._entries(source, path).items():
                        merged.setdefault(key, entry)
                continue
            key = self._key(key_node, path)
            if key in own:
                line, _col = _at(own[key][0])
                raise self.fail(key_node, (*path, key),
                                f'duplicate key "{key}" (first at line {line})')
            own[key] = (key_node, value_node)
        self.merging.discard(id(node))
        merged.update(own)
        self.merged_total += len(merged)
        if self.merged_total > MAX_NODES:
            raise self.fail(node, path, f"merge keys expand to over {MAX_NODES} entries")
        self.entries[id(node)] = merged
        return merged

    def _key(self, key_node: Node, path: KeyPath) -> str:
        if not isinstance(key_node, ScalarNode) or key_node.tag == _NULL:
            raise self.fail(key_node, path, "mapping keys must be plain strings")
        # The text as written: "0x10" stays "0x10", "true" stays "true".
        return str(key_node.value)


def parse(text: str, source: str) -> tuple[Any, Positions]:
    """Parse one YAML document into plain data and its positions."""
    try:
        loader = _Loader(text)  # the reader checks every character here
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, source, text) from None
    try:
        node = _compose(loader, source, text)
        if node is None:
            return None, Positions()
        builder = _Builder(loader, source)
        return builder.build(node, (), frozenset()), builder.positions
    finally:
        loader.dispose()


def _compose(loader: _Loader, source: str, text: str) -> Node | None:
    try:
        node: Node | None = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or str(exc)
        if exc.context:
            message = f"{exc.context}, {message}"
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        raise ManifestError([Problem(source, line, column, "", f"invalid YAML: {message}")]
                            ) from None
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, source, text) from None
    except yaml.YAMLError as exc:
        raise ManifestError([Problem(source, None, None, "", f"invalid YAML: {exc}")]) from None
    return node


def _reader_error(exc: yaml.reader.ReaderError, source: str, text: str) -> ManifestError:
    """Control characters and lone surrogates: say where, as line and column."""
    pos = exc.position
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
    message = f"invalid YAML: character U+{char:04X} is not allowed"
    return ManifestError([Problem(source, line, column, "", message)])
