"""YAML with positions: anchors, merge keys, duplicate keys, scalars as compose reads
them, and the limits that stop alias bombs and deep nesting."""

from __future__ import annotations

import pytest

from skiff.manifest import ManifestError, load_text
from skiff.manifest.yamlpos import MAX_DEPTH, MAX_NODES, parse


def error_of(text: str) -> str:
    with pytest.raises(ManifestError) as info:
        parse(text, "app.yml")
    assert len(info.value.problems) == 1
    return str(info.value)


def test_positions_of_keys_and_values() -> None:
    doc, pos = parse("name: app\nservices:\n  web:\n    ports:\n      - '80'\n", "app.yml")
    assert doc == {"name": "app", "services": {"web": {"ports": ["80"]}}}
    assert pos.keys[("services", "web")] == (3, 3)
    assert pos.values[("services", "web", "ports", 0)] == (5, 9)
    assert pos.of_value(("services", "web", "ports", 7)) == (5, 7)  # the list: nearest known
    assert pos.of_key(("name",)) == (1, 1)


@pytest.mark.parametrize("scalar, expected", [
    ("yes", "yes"), ("on", "on"), ("off", "off"), ("y", "y"),  # YAML 1.2: strings
    ("true", True), ("False", False),
    ("22:22", "22:22"),  # not YAML 1.1's sexagesimal 1342
    ("2024-01-02", "2024-01-02"),  # not a date
    ("=", "="),
    ("~", None), ("null", None), ("", None),
    ("12", 12), ("-3", -3), ("0x1f", 31), ("017", 15), ("0o17", "0o17"),
    ("1.5", 1.5), ("1e3", "1e3"), ("1.0e+3", 1000.0), ("1.0e3", "1.0e3"),
    ("'12'", "12"),
])
def test_scalars_resolve_as_compose_reads_them(scalar: str, expected: object) -> None:
    doc, _ = parse(f"v: {scalar}\n", "f")
    assert doc == {"v": expected}


def test_keys_are_kept_as_written() -> None:
    doc, _ = parse("1: a\ntrue: b\n0x10: c\n", "f")
    assert doc == {"1": "a", "true": "b", "0x10": "c"}


def test_anchors_aliases_and_merge_keys() -> None:
    text = """\
x-base: &base
  image: busybox
  environment: &env {A: "1", B: "2"}
  deploy: {replicas: 2}
x-more: &more
  user: nobody
name: app
services:
  web:
    <<: [*base, *more]
    deploy: {replicas: 5}
  worker:
    <<: *base
    environment:
      <<: *env
      B: "3"
"""
    app = load_text(text, "app.yml", None, {}).app
    web, worker = app.services["web"], app.services["worker"]
    assert (web.image, web.user, web.replicas) == ("busybox", "nobody", 5)
    assert web.environment == {"A": "1", "B": "2"}
    assert (worker.replicas, worker.environment) == (2, {"A": "1", "B": "3"})


def test_earlier_merge_sources_win_over_later_ones() -> None:
    doc, _ = parse("a: &a {k: a}\nb: &b {k: b}\nc:\n  <<: [*a, *b]\n", "f")
    assert doc["c"] == {"k": "a"}


def test_merge_of_a_merge_source_that_was_flattened_first() -> None:
    text = "a: &a {k: 1}\nb: {<<: &i {<<: *a, k: 2}}\nc: *i\n"
    doc, _ = parse(text, "f")
    assert doc == {"a": {"k": 1}, "b": {"k": 2}, "c": {"k": 2}}


def test_position_of_a_problem_in_a_merged_value_is_at_the_override() -> None:
    text = "x-a: &x {image: a}\nname: app\nservices:\n  web:\n    <<: *x\n    image: 5\n"
    with pytest.raises(ManifestError) as info:
        load_text(text, "app.yml", None, {})
    assert str(info.value) == "app.yml:6:12 services.web.image: expected a string, got 5"


@pytest.mark.parametrize("text, expected", [
    ("a: 1\nb: 2\na: 3\n", 'app.yml:3:1 a: duplicate key "a" (first at line 1)'),
    ("s:\n  w:\n    x: 1\n    x: 1\n", 'app.yml:4:5 s.w.x: duplicate key "x" (first at line 3)'),
    ("a: 1\n'a': 2\n", 'app.yml:2:1 a: duplicate key "a" (first at line 1)'),
])
def test_duplicate_keys_are_errors(text: str, expected: str) -> None:
    assert error_of(text) == expected


def test_alias_bomb_is_stopped() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    message = error_of("\n".join(lines) + "\n")
    assert f"over {MAX_NODES} values after expanding aliases" in message


def test_doubling_merges_stay_small() -> None:
    # Each mapping merges the previous one twice: merging by key keeps every mapping
    # at two entries instead of doubling at each step.
    lines = ["x0: &x0 {a: 1, b: 2}"]
    lines += [f"x{i}: &x{i} {{<<: [*x{i - 1}, *x{i - 1}]}}" for i in range(1, 60)]
    doc, _ = parse("\n".join(lines) + "\n", "f")
    assert doc["x59"] == {"a": 1, "b": 2}


def test_wide_merges_are_bounded() -> None:
    keys = ", ".join(f"k{i}: {i}" for i in range(1000))
    lines = [f"x: &x {{{keys}}}"] + [f"m{i}: {{<<: *x}}" for i in range(300)]
    assert f"over {MAX_NODES}" in error_of("\n".join(lines) + "\n")


def test_recursive_alias_is_an_error() -> None:
    assert error_of("a: &a\n  b: *a\n") == (
        "app.yml:1:4 a.b: recursive alias: a value contains itself")
    assert "recursive alias" in error_of("a: &a [1, *a]\n")


def test_self_merge_is_an_error() -> None:
    assert "recursive merge" in error_of("a: &a\n  <<: *a\n  x: 1\n")


@pytest.mark.parametrize("text", [
    "[" * 10_000,
    "a:\n" + "".join(" " * i + "- \n" for i in range(1, 300)),
    "{a: " * 5_000 + "1" + "}" * 5_000,
])
def test_deep_nesting_is_refused_without_recursion_errors(text: str) -> None:
    assert f"nested deeper than {MAX_DEPTH} levels" in error_of(text)


@pytest.mark.parametrize("text, fragment", [
    ("a: !!binary aGk=\n", "YAML tag !!binary is not supported"),
    ("a: !!timestamp 2024-01-01\n", "YAML tag !!timestamp is not supported"),
    ("a: !!python/object:os.system x\n", "bad value"),
    ("a: !!int nope\n", "bad value"),
    ("a: " + "9" * 5000 + "\n", "a number with too many digits"),
    ("a: !!set {x}\n", ""),  # sets are mappings to null: allowed
    ("a: !custom [1]\n", "YAML tag !custom is not supported"),
    ("? [a]\n: 1\n", "mapping keys must be plain strings"),
    ("~: 1\n", "mapping keys must be plain strings"),
    ("a: *undefined\n", "found undefined alias"),
    ("a: 'unclosed\n", "invalid YAML"),
    ("a: b: c\n", "invalid YAML: mapping values are not allowed here"),
])
def test_unsupported_or_broken_yaml(text: str, fragment: str) -> None:
    if not fragment:
        parse(text, "f")
        return
    assert fragment in error_of(text)


def test_long_merge_chain_loads() -> None:
    lines = ["x0: &x0 {a: 1}"]
    lines += [f"x{i}: &x{i} {{<<: *x{i - 1}}}" for i in range(1, 3000)]
    doc, _ = parse("\n".join(lines) + "\n", "f")
    assert doc["x2999"] == {"a": 1}


def test_merge_of_something_that_is_not_a_mapping() -> None:
    assert "<< merges a mapping or a list of mappings" in error_of("a: {<<: [1]}\n")
    assert "<< merges a mapping or a list of mappings" in error_of("a: {<<: x}\n")
