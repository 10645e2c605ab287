"""One logical line → one typed instruction, with the checks that need nothing but the
line itself. Cross-line checks (stages, --from, ARG before FROM) are in dockerfile.py."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable

from skiff.build import instructions as ins
from skiff.build.durations import parse_duration_ns
from skiff.build.errors import DockerfileError
from skiff.build.lines import LogicalLine
from skiff.build.words import Flag, WordError, parse_json_array, split_words, take_flags, unquote

STAGE_NAME = re.compile(r"^[a-z][a-z0-9_.-]*$")
OCTAL_MODE = re.compile(r"^[0-7]{3,4}$")
_WHITESPACE = re.compile(r"\s+")


class _Bad(Exception):
    """A problem of this line; parse_instruction adds the file and line number."""


_Parser = Callable[[LogicalLine, str, str, list[Flag]], ins.Instruction]


def parse_instruction(line: LogicalLine, escape: str, source: str) -> ins.Instruction:
    parts = _WHITESPACE.split(line.text.strip(), maxsplit=1)
    keyword, rest = parts[0], (parts[1] if len(parts) > 1 else "")
    word = keyword.lower()
    parser = PARSERS.get(word)
    if parser is None:
        guess = difflib.get_close_matches(keyword.upper(), [k.upper() for k in PARSERS], n=1)
        hint = f" (did you mean {guess[0]}?)" if guess else ""
        raise DockerfileError(source, line.line, f"unknown instruction {keyword}{hint}")
    try:
        flags: list[Flag] = []
        if word in FLAGGED:
            flags, rest = take_flags(rest, escape)
        return parser(line, rest.strip(), escape, flags)
    except (_Bad, WordError, ValueError) as exc:
        raise DockerfileError(source, line.line, f"{keyword.upper()}: {exc}") from None


def _flag_values(flags: list[Flag], allowed: dict[str, bool]) -> dict[str, str | None]:
    """name → value; `allowed` maps each known flag to whether it takes a value."""
    out: dict[str, str | None] = {}
    for flag in flags:
        if flag.name not in allowed:
            known = ", ".join(f"--{n}" for n in allowed) or "none"
            raise _Bad(f"unknown flag --{flag.name} (known flags: {known})")
        if flag.name in out:
            raise _Bad(f"--{flag.name} given twice")
        if allowed[flag.name]:
            if flag.value is None or flag.value == "":
                raise _Bad(f"--{flag.name} needs a value (--{flag.name}=VALUE)")
            out[flag.name] = flag.value
        else:
            if flag.value not in (None, "true", "false"):
                raise _Bad(f"--{flag.name} takes no value (or true/false), got {flag.value!r}")
            out[flag.name] = flag.value or "true"
    return out


def _need(rest: str, what: str) -> str:
    if not rest:
        raise _Bad(f"requires {what}")
    return rest


def _from(line: LogicalLine, rest: str, escape: str, flags: list[Flag]) -> ins.Instruction:
    values = _flag_values(flags, {"platform": True})
    words = split_words(rest, escape)
    if not words:
        raise _Bad("requires an image (FROM image [AS name])")
    name = None
    if len(words) == 3 and words[1].lower() == "as":
        name = words[2].lower()
        if not STAGE_NAME.match(name):
            raise _Bad(f"invalid stage name {words[2]!r}: it must start with a letter and "
                       "hold only letters, digits, '-', '_' and '.'")
    elif len(words) != 1:
        raise _Bad(f"requires either one or three arguments (FROM image [AS name]), got "
                   f"{len(words)}")
    return ins.From(line.line, line.text, image=words[0], name=name,
                    platform=values.get("platform"))


def _command(rest: str, allow_empty: bool) -> ins.Command:
    argv = parse_json_array(rest)
    if argv is not None:
        if not argv and not allow_empty:
            raise _Bad("requires a command; the JSON array is empty")
        return ins.Command(tuple(argv), shell=False)
    return ins.Command((_need(rest, "a command"),), shell=True)


def _run(line: LogicalLine, rest: str, escape: str, flags: list[Flag]) -> ins.Instruction:
    if flags:
        raise _Bad(f"--{flags[0].name} is not supported by skiff (RUN takes no flags)")
    return ins.Run(line.line, line.text, command=_command(rest, allow_empty=False))


def _cmd(line: LogicalLine, rest: str, escape: str, flags: list[Flag]) -> ins.Instruction:
    return ins.Cmd(line.line, line.text, command=_command(rest, allow_empty=True))


def _entrypoint(line: LogicalLine, rest: str, escape: str,
                flags: list[Flag]) -> ins.Instruction:
    return ins.Entrypoint(line.line, line.text, command=_command(rest, allow_empty=True))


def _sources_dest(rest: str, escape: str) -> tuple[tuple[str, ...], str]:
    items = parse_json_array(rest)
    if items is None:
        items = split_words(rest, escape)
    if len(items) < 2:
        raise _Bad(f"requires at least two arguments (a source and a destination), got "
                   f"{len(items)}{': ' + repr(items[0]) if items else ''}")
    if any(item == "" for item in items):
        raise _Bad("a source or destination is empty")
    return tuple(items[:-1]), items[-1]


def _chmod(value: str | None) -> str | None:
    if value is not None and "$" not in value and not OCTAL_MODE.match(unquote(value, "\\")):
        raise _Bad(f"--chmod={value} is not an octal mode like 755 or 0644")
    return value


def _copy(line: LogicalLine, rest: str, escape: str, flags: list[Flag]) -> ins.Instruction:
    values = _flag_values(flags, {"from": True, "chown": True, "chmod": True, "link": False})
    sources, dest = _sources_dest(rest, escape)
    return ins.Copy(line.line, line.text, sources=sources, dest=dest,
                    chown=values.get("chown"), chmod=_chmod(values.get("chmod")),
                    from_=values.get("from"), link=values.get("link") == "true")


def _add(line: LogicalLine, rest: str, escape: str, flags: list[Flag]) -> ins.Instruction:
    values = _flag_values(flags, {"chown": True, "chmod": True, "checksum": True,
                                  "link": False})
    sources, dest = _sources_dest(rest, escape)
    return ins.Add(line.line, line.text, sources=sources, dest=dest,
                   chown=values.get("chown"), chmod=_chmod(values.get("chmod")),
                   checksum=values.get("checksum"), link=values.get("link") == "true")


def _workdir(line: LogicalLine, rest: str, escape: str, flags: list[Flag]) -> ins.Instruction:
    return ins.Workdir(line.line, line.text, path=_need(rest, "a path"))


def _name_values(rest: str, escape: str, keyword: str) -> tuple[tuple[str, str], ...]:
    """`KEY name value` (old form, the value is the rest of the line) or
    `KEY a=1 b="two words"` (new form); the first word decides, as in Docker."""
    words = split_words(rest, escape)
    if not words:
        raise _Bad("requires at least one argument")
    if "=" not in words[0]:
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise _Bad(f"requires a value: {keyword} name=value (or {keyword} name value)")
        return ((parts[0], parts[1]),)
    pairs = []
    for word in words:
        name, eq, value = word.partition("=")
        if not eq:
            raise _Bad(f"can't find = in {word!r}; expected name=value")
        if not name:
            raise _Bad(f"a name can not be blank in {word!r}")
        pairs.append((name, value))
    return tuple(pairs)


def _env(line: LogicalLine, rest: str, escape: str, flags: list[Flag]) -> ins.Instruction:
    return ins.Env(line.line, line.text, pairs=_name_values(rest, escape, "ENV"))


def _label(line: LogicalLine, rest: str, escape: str, flags: list[Flag]) -> ins.Instruction:
    return ins.Label(line.line, line.text, pairs=_name_values(rest, escape, "LABEL"))


def _arg(line: LogicalLine, rest: str, escape: str, flags: list[Flag]) -> ins.Instruction:
    words = split_words(rest, escape)
    if not words:
        raise _Bad("requires at least one argument (ARG name[=default])")
    decls = []
    for word in words:
        name, eq, default = word.partition("=")
        name = unquote(name, escape)
        if not name:
            raise _Bad(f"a name can not be blank in {word!r}")
        decls.append(ins.ArgDecl(name, default if eq else None))
    return ins.Arg(line.line, line.text, args=tuple(decls))


def _expose(line: LogicalLine, rest: str, escape: str, flags: list[Flag]) -> ins.Instruction:
    ports = split_words(_need(rest, "at least one port"), escape)
    return ins.Expose(line.line, line.text, ports=tuple(ports))


def _one_word(rest: str, escape: str, what: str) -> str:
    words = split_words(rest, escape)
    if len(words) != 1:
        raise _Bad(f"requires exactly one argument ({what}), got {len(words)}")
    return words[0]


def _user(line: LogicalLine, rest: str, escape: str, flags: list[Flag]) -> ins.Instruction:
    return ins.User(line.line, line.text, user=_one_word(rest, escape, "user[:group]"))


def _stopsignal(line: LogicalLine, rest: str, escape: str,
                flags: list[Flag]) -> ins.Instruction:
    return ins.Stopsignal(line.line, line.text, signal=_one_word(rest, escape, "a signal"))


def _duration(name: str, value: str | None, escape: str) -> int | None:
    if value is None:
        return None
    ns = parse_duration_ns(unquote(value, escape))
    if 0 < ns < 1_000_000:
        raise _Bad(f"--{name}={value} cannot be less than 1ms")
    return ns


def _healthcheck(line: LogicalLine, rest: str, escape: str,
                 flags: list[Flag]) -> ins.Instruction:
    values = _flag_values(flags, {"interval": True, "timeout": True, "start-period": True,
                                  "start-interval": True, "retries": True})
    parts = _WHITESPACE.split(rest, maxsplit=1)
    kind, tail = parts[0], (parts[1].strip() if len(parts) > 1 else "")
    if kind.upper() == "NONE":
        if tail or values:
            raise _Bad("NONE takes no arguments and no flags")
        return ins.Healthcheck(line.line, line.text, test=("NONE",))
    if kind.upper() != "CMD":
        raise _Bad(f"unknown type {kind or '(none)'!r}: expected CMD or NONE")
    command = _command(tail, allow_empty=False)
    test = ("CMD", *command.args) if not command.shell else ("CMD-SHELL", command.args[0])
    retries = None
    if values.get("retries") is not None:
        text = unquote(values["retries"] or "", escape)
        if not text.isdigit():
            raise _Bad(f"--retries={text} is not a whole number >= 0")
        retries = int(text)
    return ins.Healthcheck(
        line.line, line.text, test=test,
        interval_ns=_duration("interval", values.get("interval"), escape),
        timeout_ns=_duration("timeout", values.get("timeout"), escape),
        start_period_ns=_duration("start-period", values.get("start-period"), escape),
        start_interval_ns=_duration("start-interval", values.get("start-interval"), escape),
        retries=retries)


def _shell(line: LogicalLine, rest: str, escape: str, flags: list[Flag]) -> ins.Instruction:
    argv = parse_json_array(rest)
    if not argv:
        raise _Bad('requires the arguments in JSON form, like ["/bin/sh", "-c"]')
    return ins.Shell(line.line, line.text, argv=tuple(argv))


def _volume(line: LogicalLine, rest: str, escape: str, flags: list[Flag]) -> ins.Instruction:
    paths = parse_json_array(rest)
    if paths is None:
        paths = split_words(rest, escape)
    if not paths:
        raise _Bad("requires at least one path")
    if any(not p.strip() for p in paths):
        raise _Bad("a volume path can not be an empty string")
    return ins.Volume(line.line, line.text, paths=tuple(paths))


def _maintainer(line: LogicalLine, rest: str, escape: str,
                flags: list[Flag]) -> ins.Instruction:
    return ins.Maintainer(line.line, line.text, name=_need(rest, "a name"))


def _onbuild(line: LogicalLine, rest: str, escape: str, flags: list[Flag]) -> ins.Instruction:
    _need(rest, "an instruction (ONBUILD RUN ...)")
    inner_word = rest.split()[0].lower()
    if inner_word in ("onbuild", "from", "maintainer"):
        raise _Bad(f"{inner_word.upper()} isn't allowed as an ONBUILD trigger")
    try:
        trigger = parse_instruction(LogicalLine(line.line, rest), escape, "")
    except DockerfileError as exc:
        raise _Bad(f"trigger: {exc.message}") from None
    return ins.Onbuild(line.line, line.text, trigger=trigger, expression=rest)


PARSERS: dict[str, _Parser] = {
    "from": _from, "run": _run, "cmd": _cmd, "entrypoint": _entrypoint, "copy": _copy,
    "add": _add, "workdir": _workdir, "env": _env, "arg": _arg, "label": _label,
    "expose": _expose, "user": _user, "stopsignal": _stopsignal,
    "healthcheck": _healthcheck, "shell": _shell, "volume": _volume,
    "maintainer": _maintainer, "onbuild": _onbuild,
}
# Instructions whose leading --words are flags; elsewhere (`CMD --help`) they are arguments.
FLAGGED = {"from", "run", "copy", "add", "healthcheck"}
