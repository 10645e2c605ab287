"""Docker's variable substitution for one word: `$VAR`, `${VAR}`, `${VAR:-default}`,
`${VAR-default}`, `${VAR:+alt}`, `${VAR+alt}`, `${VAR:?message}`, `${VAR?message}`; quotes
removed as the shell would; the escape character makes the next character literal
(`\\$HOME` is `$HOME`). Unset variables expand to nothing.

Pure: the caller passes the environment (ARG and ENV values so far in the stage, build
args); `skiff.build.scope` decides which instructions get expanded and with what.
"""

from __future__ import annotations

from collections.abc import Mapping

# Docker's one-character special parameters ($1, $@, ...): never set in a build, so empty.
_SPECIAL = set("*#@?-$!0")


class ExpandError(ValueError):
    """Bad substitution syntax, or a `${VAR:?message}` whose variable is unset."""


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """`word` with its variables replaced and its quotes and escapes removed."""
    return _Lexer(word, env, escape).run(stop="")


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1
        return ch

    def run(self, stop: str) -> str:
        """Up to `stop` (a `}` that closes `${...:-word}`) or the end."""
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.peek()
            if stop and ch == stop:
                break
            if ch == "'":
                self.next()
                out.append(self.single_quoted())
            elif ch == '"':
                self.next()
                out.append(self.double_quoted())
            elif ch == "$":
                out.append(self.dollar())
            elif ch == self.escape:
                self.next()
                if self.pos < len(self.text):  # a trailing escape is dropped, like Docker
                    out.append(self.next())
            else:
                out.append(self.next())
        return "".join(out)

    def single_quoted(self) -> str:
        end = self.text.find("'", self.pos)
        if end < 0:
            raise ExpandError(f"unexpected end of {self.text!r} looking for the matching '")
        value = self.text[self.pos:end]
        self.pos = end + 1
        return value

    def double_quoted(self) -> str:
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise ExpandError(f'unexpected end of {self.text!r} looking for the matching "')
            ch = self.peek()
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            self.next()
            if ch == self.escape and self.peek() in ('"', "$", self.escape) and self.peek():
                ch = self.next()  # only these can be escaped inside "..."
            out.append(ch)

    def name(self) -> str:
        start = self.pos
        if self.peek().isdigit():
            while self.peek().isdigit():
                self.next()
            return self.text[start:self.pos]
        if self.peek() in _SPECIAL:
            return self.next()
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            self.next()
        return self.text[start:self.pos]

    def dollar(self) -> str:
        self.next()  # the $
        if self.peek() != "{":
            name = self.name()
            return self.env.get(name, "") if name else "$"
        self.next()  # the {
        name = self.name()
        if not name:
            raise ExpandError(f"bad substitution in {self.text!r}: missing variable name")
        ch = self.next()
        if ch == "}":
            return self.env.get(name, "")
        if ch == "":
            raise ExpandError(f"missing '}}' in {self.text!r}")
        colon = ch == ":"
        if colon:
            ch = self.next()
        if ch not in ("-", "+", "?"):
            raise ExpandError(f"unsupported modifier {(':' if colon else '') + ch!r} in "
                              f"${{{name}...}} of {self.text!r} (supported: :- - :+ + :? ?)")
        word = self.run(stop="}")
        if self.next() != "}":
            raise ExpandError(f"missing '}}' in {self.text!r}")
        value = self.env.get(name)
        is_set = value is not None and (value != "" or not colon)
        if ch == "-":
            return value if is_set and value is not None else word
        if ch == "+":
            return word if is_set else ""
        if not is_set:
            raise ExpandError(f"{name}: {word or 'is not set'}")
        return value or ""


def has_variables(word: str) -> bool:
    """Whether expansion could change `word` beyond removing quotes: checks the parser
    can make now (a stage name in --from) wait for the build when it is False."""
    return "$" in word
