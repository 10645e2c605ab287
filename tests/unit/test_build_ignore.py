"""The .dockerignore matcher, against Docker's documented rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from skiff.build import IgnoreError, IgnoreRules, ignore_file_for, load_ignore
from skiff.build.paths import go_clean


def rules(text: str) -> IgnoreRules:
    return IgnoreRules.parse(text)


@pytest.mark.parametrize("pattern, path, excluded", [
    # the documented examples
    ("*/temp*", "somedir/temporary.txt", True),
    ("*/temp*", "somedir/temp", True),
    ("*/temp*", "temp", False),
    ("*/*/temp*", "somedir/subdir/temporary.txt", True),
    ("temp?", "tempa", True),
    ("temp?", "temp", False),
    ("temp?", "tempab", False),
    # cleaning: /foo, ./foo, foo/ and foo//. all mean foo
    ("/foo/bar", "foo/bar", True),
    ("./foo", "foo", True),
    ("foo/", "foo", True),
    ("foo//./", "foo", True),
    ("a/../b", "b", True),
    # a directory match covers its contents; a file pattern never matches parents
    ("node_modules", "node_modules/x/y.js", True),
    ("node_modules", "src/node_modules", False),
    ("foo/bar", "foo", False),
    # ** is any number of directories, including none
    ("**/*.pyc", "x.pyc", True),
    ("**/*.pyc", "a/b/c/x.pyc", True),
    ("**/*.pyc", "a/b/c/x.py", False),
    ("**/__pycache__", "pkg/__pycache__/m.cpython-311.pyc", True),
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**", "a/x/y", True),
    ("a/**", "a", False),
    ("**", "anything/at/all", True),
    # * and ? never cross /
    ("*.md", "docs/a.md", False),
    ("*", "docs/a.md", True),  # matches the parent directory docs
    ("?", "a/b", True),
    # classes, negation with ^, escapes
    ("file[0-9].txt", "file7.txt", True),
    ("file[0-9].txt", "filex.txt", False),
    ("file[^0-9].txt", "filex.txt", True),
    ("file[!x].txt", "file!.txt", True),  # ! is a member, not a negation
    ("[]]x", "]x", True),
    ("\\*.txt", "*.txt", True),
    ("\\*.txt", "a.txt", False),
    # regex characters are literal
    ("a+b(c).txt", "a+b(c).txt", True),
    ("a.txt", "abtxt", False),
    ("$x{1}", "$x{1}", True),
])
def test_single_pattern(pattern, path, excluded):
    assert rules(pattern).excludes(path) is excluded


def test_exceptions_last_match_wins():
    text = "*.md\n!README*.md\nREADME-secret.md\n"
    r = rules(text)
    assert [r.excludes(p) for p in ("a.md", "README.md", "README-secret.md")] == [
        True, False, True]
    r = rules("*.md\nREADME-secret.md\n!README*.md\n")
    assert not r.excludes("README-secret.md")


def test_reinclude_under_an_excluded_directory():
    r = rules("build\n!build/keep\n!build/keep/**\nbuild/keep/tmp\n")
    assert r.excludes("build/out.o")
    assert not r.excludes("build/keep")
    assert not r.excludes("build/keep/x/y")
    assert r.excludes("build/keep/tmp/z")
    assert r.may_include_below("build")
    assert not rules("node_modules\n").may_include_below("node_modules")
    assert not rules("a\n!b/x\n").may_include_below("a")
    assert rules("a\n!**/x\n").may_include_below("a")


def test_include_only_pattern():
    r = rules("*\n!src\n!package.json\n")
    assert r.excludes("README.md") and r.excludes("tests/t.py")
    assert not r.excludes("src/app.py") and not r.excludes("package.json")


def test_comments_blanks_and_whitespace():
    r = rules("\ufeff# comment\n\n   \n  *.log  \r\n #x\n")
    assert r.excludes("a.log")
    assert r.excludes("#x")  # only a # in column 1 makes a comment; then it is trimmed
    assert len(r.patterns) == 2


def test_dockerfile_and_dockerignore_may_be_ignored():
    r = rules("Dockerfile\n.dockerignore\n")
    assert r.excludes("Dockerfile") and r.excludes(".dockerignore")


@pytest.mark.parametrize("text, line, message", [
    ("ok\n!\n", 2, "bare '!'"),
    ("a[bc\n", 1, "'[' is never closed"),
    ("[z-a]\n", 1, "runs backwards"),
])
def test_bad_patterns(text, line, message):
    with pytest.raises(IgnoreError) as info:
        rules(text)
    assert info.value.line == line and message in str(info.value)
    assert str(info.value).startswith(f".dockerignore:{line}: ")


@pytest.mark.parametrize("path, clean", [
    ("", "."), (".", "."), ("a//b/./c/..", "a/b"), ("/../x", "/x"), ("../../a", "../../a"),
    ("a/../..", ".."), ("//a", "/a"), ("a/", "a"), ("/", "/"),
])
def test_go_clean(path, clean):
    assert go_clean(path) == clean


def test_ignore_file_for(tmp_path: Path):
    assert ignore_file_for(tmp_path) is None
    assert load_ignore(tmp_path).patterns == []
    (tmp_path / ".dockerignore").write_text("*.log\n")
    assert ignore_file_for(tmp_path) == tmp_path / ".dockerignore"
    dockerfile = tmp_path / "docker" / "prod.Dockerfile"
    dockerfile.parent.mkdir()
    assert ignore_file_for(tmp_path, dockerfile) == tmp_path / ".dockerignore"
    own = tmp_path / "docker" / "prod.Dockerfile.dockerignore"
    own.write_text("secret\n")
    assert ignore_file_for(tmp_path, dockerfile) == own
    assert load_ignore(tmp_path, dockerfile).excludes("secret")
