"""The .dockerignore matcher, with Docker's rules (moby's patternmatcher):

- One pattern a line. A line starting with `#` in column 1 is a comment; lines are
  trimmed; blank lines are skipped. `!` makes an exception (re-include).
- A pattern is cleaned like Go's filepath.Clean and a leading `/` is dropped, so `/foo`,
  `./foo` and `foo/` all mean `foo`, relative to the context root.
- Globs: `*` is any run of characters but `/`, `?` one character but `/`, `[...]` a class
  (negated by `^`), `\\` escapes the next character, `**` any number of directories
  (`**/*.pyc` also matches `x.pyc` at the root; a trailing `**` matches everything below).
- A pattern matches a path when it matches the path or any of its parent directories, so
  excluding a directory excludes its contents; the last pattern that matches decides,
  so a later `!pattern` re-includes files even under an excluded directory.

Dockerfile and .dockerignore: Docker sends them to the daemon even when ignored, but COPY
and ADD never see them then. skiff gets the same effect more simply: the context tar
honours every pattern, and the CLI sends the Dockerfile's text beside the context, so an
ignored Dockerfile is read for the build and never copied into the image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from skiff.build.errors import IgnoreError
from skiff.build.paths import go_clean

_BOM = "\ufeff"
_META = set("*?[\\")


@dataclass(frozen=True)
class Pattern:
    text: str  # cleaned, without the `!`
    exclusion: bool  # True for `!pattern` (an exception that re-includes)
    regex: re.Pattern[str]
    line: int

    def matches(self, path: str) -> bool:
        return self.regex.match(path) is not None

    def static_prefix(self) -> tuple[str, ...]:
        """The leading path components with no glob characters: an exception can only
        match below a directory that agrees with this prefix."""
        out: list[str] = []
        for part in self.text.split("/"):
            if any(ch in _META for ch in part):
                break
            out.append(part)
        return tuple(out)


def _translate(pattern: str, source: str, line: int) -> re.Pattern[str]:
    """A cleaned pattern → an anchored regex, as patternmatcher compiles it."""
    out = ["^"]
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(?:.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i < n:
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append(re.escape("\\"))
        elif ch == "[":
            end, body = _class(pattern, i, source, line)
            out.append(body)
            i = end
        else:
            out.append(re.escape(ch))
    out.append("$")
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as exc:
        raise IgnoreError(source, line, f"bad pattern {pattern!r}: {exc}") from None


def _class(pattern: str, i: int, source: str, line: int) -> tuple[int, str]:
    """A `[...]` class starting after the `[`: its regex and the index after the `]`."""
    out = ["["]
    if i < len(pattern) and pattern[i] == "^":
        out.append("^")
        i += 1
    first = True
    prev: str | None = None
    while i < len(pattern):
        ch = pattern[i]
        if ch == "]" and not first:
            out.append("]")
            return i + 1, "".join(out)
        first = False
        if ch == "\\" and i + 1 < len(pattern):
            i += 1
            ch = pattern[i]
        if ch == "-" and prev is not None and i + 1 < len(pattern) and pattern[i + 1] != "]":
            hi = pattern[i + 1]
            if hi == "\\" and i + 2 < len(pattern):
                hi = pattern[i + 2]
                i += 1
            if hi < prev:
                raise IgnoreError(source, line, f"bad pattern {pattern!r}: the range "
                                  f"{prev}-{hi} runs backwards")
            out.append("-" + re.escape(hi))
            prev = None
            i += 2
            continue
        out.append(re.escape(ch))
        prev = ch
        i += 1
    raise IgnoreError(source, line, f"bad pattern {pattern!r}: '[' is never closed")


def glob_regex(component: str) -> re.Pattern[str]:
    """One path component's glob as Go's filepath.Match reads it (`**` is `*` here), for
    COPY sources; IgnoreError for a bad `[` class."""
    return _translate(component.replace("**", "*"), "COPY source", 0)


def clean_pattern(raw: str) -> str:
    cleaned = go_clean(raw)
    if len(cleaned) > 1 and cleaned.startswith("/"):
        cleaned = cleaned[1:]
    return cleaned


class IgnoreRules:
    """The patterns of one .dockerignore; `excludes(path)` answers for context paths."""

    def __init__(self, patterns: list[Pattern]) -> None:
        self.patterns = patterns

    @classmethod
    def parse(cls, text: str, source: str = ".dockerignore") -> IgnoreRules:
        if text.startswith(_BOM):
            text = text[1:]
        patterns = []
        for number, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
            if raw.startswith("#"):
                continue
            line = raw.strip()
            if not line:
                continue
            exclusion = line.startswith("!")
            if exclusion:
                line = line[1:].strip()
                if not line:
                    raise IgnoreError(source, number, "illegal exclusion pattern: a bare '!'")
            cleaned = clean_pattern(line)
            patterns.append(Pattern(cleaned, exclusion, _translate(cleaned, source, number),
                                    number))
        return cls(patterns)

    @classmethod
    def empty(cls) -> IgnoreRules:
        return cls([])

    @property
    def has_exceptions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def excludes(self, path: str) -> bool:
        """Whether `path` (relative to the context root, /-separated) is left out."""
        path = go_clean(path)
        parents = path.split("/")[:-1]
        matched = False
        for pattern in self.patterns:
            # Only a pattern that could flip the answer is worth trying.
            if pattern.exclusion != matched:
                continue
            hit = pattern.matches(path) or any(
                pattern.matches("/".join(parents[:i + 1])) for i in range(len(parents)))
            if hit:
                matched = not pattern.exclusion
        return matched

    def may_include_below(self, directory: str) -> bool:
        """Whether an exception could re-include something under an excluded `directory`,
        so the walk must still go into it (node_modules with no exceptions is skipped)."""
        parts = tuple(go_clean(directory).split("/"))
        for pattern in self.patterns:
            if not pattern.exclusion:
                continue
            prefix = pattern.static_prefix()
            common = min(len(prefix), len(parts))
            if prefix[:common] == parts[:common]:
                return True
        return False


def ignore_file_for(context: Path, dockerfile: Path | None = None) -> Path | None:
    """The ignore file to use: `<Dockerfile>.dockerignore` beside the Dockerfile if it
    exists (BuildKit's per-Dockerfile ignore file), else `<context>/.dockerignore`."""
    if dockerfile is not None:
        own = dockerfile.with_name(dockerfile.name + ".dockerignore")
        if own.is_file():
            return own
    default = context / ".dockerignore"
    return default if default.is_file() else None


def load_ignore(context: Path, dockerfile: Path | None = None) -> IgnoreRules:
    path = ignore_file_for(context, dockerfile)
    if path is None:
        return IgnoreRules.empty()
    return IgnoreRules.parse(path.read_text(encoding="utf-8", errors="surrogateescape"),
                             source=str(path))
