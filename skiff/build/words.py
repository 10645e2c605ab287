"""Splitting an instruction's arguments the way Docker's parser does, before any variable
is expanded: words keep their quotes and escapes (expansion removes them later, step by
step, with the build-time environment), flags come off the front, JSON arrays are the
exec form."""

from __future__ import annotations

import json
from dataclasses import dataclass


class WordError(ValueError):
    """A problem with the words of one instruction; the parser adds file and line."""


def split_words(text: str, escape: str) -> list[str]:
    """Whitespace-separated words; quotes group (`a "b c"` is two words) and are kept, and
    the escape character keeps the next character in its word. An unterminated quote is an
    error here rather than a surprise at build time."""
    words: list[str] = []
    word: list[str] = []
    in_word = False
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            word.append(ch)
            if ch == quote:
                quote = ""
            elif ch == escape and quote == '"' and i + 1 < len(text):
                i += 1
                word.append(text[i])
            i += 1
            continue
        if ch.isspace():
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
            i += 1
            continue
        in_word = True
        word.append(ch)
        if ch in ("'", '"'):
            quote = ch
        elif ch == escape and i + 1 < len(text):
            i += 1
            word.append(text[i])
        i += 1
    if quote:
        raise WordError(f"unterminated {'single' if quote == chr(39) else 'double'} quote "
                        f"in {text!r}")
    if in_word:
        words.append("".join(word))
    return words


@dataclass(frozen=True)
class Flag:
    name: str  # without the leading --
    value: str | None  # raw (quotes kept); None for a bare `--flag`


def take_flags(text: str, escape: str) -> tuple[list[Flag], str]:
    """Leading `--name[=value]` words and the rest of the text, unsplit (it may be JSON or
    a shell command). A lone `--` ends the flags and is dropped."""
    flags: list[Flag] = []
    rest = text.lstrip()
    while rest.startswith("--"):
        word = _first_word(rest, escape)
        rest = rest[len(word):].lstrip()
        if word == "--":
            break
        name, eq, value = word[2:].partition("=")
        flags.append(Flag(name.lower(), value if eq else None))
    return flags, rest


def _first_word(text: str, escape: str) -> str:
    """The first word of `text`, exactly as written (so its length can be cut off)."""
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote == '"':
                i += 1
        elif ch.isspace():
            break
        elif ch in ("'", '"'):
            quote = ch
        elif ch == escape:
            i += 1
        i += 1
    if quote:
        raise WordError(f"unterminated quote in flag {text.split()[0]!r}")
    return text[:i]


def parse_json_array(text: str) -> list[str] | None:
    """The exec form: a JSON array of strings, or None when `text` is not one and should be
    read as the shell form. Docker silently falls back to the shell form on broken JSON,
    which runs `["python", "app.py"` through /bin/sh; skiff refuses what is plainly meant as
    JSON: `["` or `['` at the start (`['a']`, `["a" "b"]`), or no closing `]` at all.
    `[ -f x ] && ...` and `[[ -n "$x" ]]` (shell tests) stay the shell form."""
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        if text[1:2] in ('"', "'") or "]" not in text:
            what = "unterminated JSON array" if "]" not in text else "invalid JSON array"
            raise WordError(f"{what} {_short(text)}: {exc.msg} (exec form needs JSON with "
                            'double quotes, like ["executable", "arg"])') from None
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise WordError(f"the JSON array {_short(text)} must hold only strings")
    return value


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def unquote(word: str, escape: str) -> str:
    """A word with its quotes and escapes removed, no variables expanded: for the values of
    instructions Docker does not expand (HEALTHCHECK and RUN flags)."""
    out: list[str] = []
    quote = ""
    i = 0
    while i < len(word):
        ch = word[i]
        if quote == "'":
            if ch == "'":
                quote = ""
            else:
                out.append(ch)
        elif quote == '"':
            if ch == '"':
                quote = ""
            elif ch == escape and i + 1 < len(word) and word[i + 1] in ('"', "$", escape):
                i += 1
                out.append(word[i])
            else:
                out.append(ch)
        elif ch in ("'", '"'):
            quote = ch
        elif ch == escape and i + 1 < len(word):
            i += 1
            out.append(word[i])
        elif ch != escape:
            out.append(ch)
        i += 1
    return "".join(out)
