"""Properties of the build front half on generated input: whatever the text, only the
documented errors escape, and a few laws (cleaning is idempotent, plain words expand to
themselves, plain patterns match exactly themselves and what is under them)."""

from __future__ import annotations

import contextlib
import os
import posixpath

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skiff.build import (
    DockerfileError,
    IgnoreError,
    IgnoreRules,
    UnsafePath,
    check_source_pattern,
    expand,
    global_scope,
    needed_stages,
    parse_dockerfile,
    stage_scope,
    step,
)
from skiff.build.expand import ExpandError
from skiff.build.instr_parse import PARSERS
from skiff.build.paths import go_clean
from skiff.build.words import split_words

SETTINGS = settings(max_examples=int(os.environ.get("SKIFF_FUZZ_EXAMPLES", "60")),
                    deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text rich in what the parser cares about.
PIECES = ["\\", "`", "\n", " ", "\t", "#", "=", "$", "{", "}", ":", "-", "+", "?", '"', "'",
          "[", "]", ",", "--", "AS", "as", "scratch", "0", "1", "a", "x", "/", "*", "!"]
tricky = st.lists(st.sampled_from(PIECES) | st.text(max_size=3), max_size=40).map("".join)
keywords = st.sampled_from([k.upper() for k in PARSERS] + ["FROMM", "# escape=`"])
lines = st.builds(lambda k, rest: f"{k} {rest}", keywords, tricky)
dockerfiles = st.lists(lines, max_size=12).map(lambda ls: "\n".join(["FROM x", *ls]))


@SETTINGS
@given(st.text(max_size=300) | tricky | dockerfiles)
def test_parser_raises_only_dockerfile_errors(text):
    try:
        parse_dockerfile(text)
    except DockerfileError as exc:
        assert str(exc).startswith("Dockerfile")
        assert exc.line is None or exc.line >= 1


@SETTINGS
@given(dockerfiles, st.dictionaries(st.sampled_from(["a", "x", "A", "B"]), tricky,
                                    max_size=3))
def test_stepping_raises_only_dockerfile_errors(text, build_args):
    try:
        df = parse_dockerfile(text)
        globals_ = global_scope(df, build_args)
        needed_stages(df, build_args=build_args)
        for stage in df.stages:
            scope = stage_scope(globals_)
            for instruction in stage.instructions:
                _, scope = step(scope, instruction)
    except DockerfileError:
        pass


@SETTINGS
@given(tricky, st.dictionaries(st.sampled_from(["a", "x", "A"]), st.text(max_size=5)),
       st.sampled_from(["\\", "`"]))
def test_expand_raises_only_expand_errors(word, env, escape):
    with contextlib.suppress(ExpandError):
        assert isinstance(expand(word, env, escape), str)


plain = st.text(st.characters(codec="utf-8", exclude_characters="$'\"\\`"), max_size=20)


@SETTINGS
@given(plain)
def test_plain_words_expand_to_themselves(word):
    assert expand(word, {"a": "1"}) == word


@SETTINGS
@given(st.lists(st.text("abc/._-=:", min_size=1, max_size=6), max_size=6))
def test_split_words_of_plain_words(words):
    assert split_words(" \t ".join(words), "\\") == words


@SETTINGS
@given(st.text("ab./", max_size=20))
def test_go_clean_is_idempotent_and_like_normpath(path):
    clean = go_clean(path)
    assert go_clean(clean) == clean
    expected = posixpath.normpath(path) if path else "."
    if expected.startswith("//"):
        expected = expected[1:]
    assert clean == expected


@SETTINGS
@given(st.text(max_size=200) | tricky, st.text(max_size=30))
def test_ignore_raises_only_ignore_errors(text, path):
    try:
        rules = IgnoreRules.parse(text)
    except IgnoreError as exc:
        assert exc.line >= 1
        return
    assert rules.excludes(path) in (True, False)
    assert rules.may_include_below(path) in (True, False)


segment = st.text("abcXYZ019_-.", min_size=1, max_size=5).filter(lambda s: s not in (".", ".."))


@SETTINGS
@given(st.lists(segment, min_size=1, max_size=4), st.lists(segment, max_size=3),
       st.lists(segment, min_size=1, max_size=4))
def test_plain_pattern_matches_itself_and_below_only(parts, below, other):
    pattern = "/".join(parts)
    rules = IgnoreRules.parse(pattern)
    assert rules.excludes(pattern)
    assert rules.excludes("/".join(parts + below))
    other_path = "/".join(other)
    if not (other_path == pattern or other_path.startswith(pattern + "/")):
        assert not rules.excludes(other_path)
    assert not IgnoreRules.parse(pattern + "\n!" + pattern).excludes(pattern)


@SETTINGS
@given(st.text("ab./*", max_size=20))
def test_checked_sources_stay_inside(source):
    try:
        clean = check_source_pattern(source)
    except UnsafePath:
        return
    assert not clean.startswith("/") and clean != ".." and not clean.startswith("../")
