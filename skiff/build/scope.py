"""The build-time environment, stepped instruction by instruction, and the expansion of
each instruction with it — pure, so the builder calls `step` as it executes a stage and
tests can follow ARG scoping across FROM without building anything.

Docker's rules, as followed here:
- ARGs before the first FROM are global: their values (a --build-arg, else the default)
  are usable in FROM lines only. Inside a stage they are invisible until redeclared with
  `ARG NAME`, which takes the global value.
- A stage's `ARG NAME=default` takes the --build-arg if given, else its own default.
- ENV overrides an ARG of the same name; the base image's Env seeds the stage's ENV.
- Every variable in one instruction is expanded with the environment as it was before
  that instruction: `ENV a=1 b=$a` sets b to the old a.
- Expanded: FROM (global ARGs only), ADD, COPY (and --chown, --chmod, --from), ENV, ARG
  defaults, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR. Not expanded: RUN, CMD,
  ENTRYPOINT, HEALTHCHECK, SHELL (the shell expands at run time), MAINTAINER, ONBUILD
  (its trigger expands when it fires).
"""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from skiff.build import instructions as ins
from skiff.build.errors import DockerfileError
from skiff.build.expand import ExpandError, expand
from skiff.build.instr_parse import OCTAL_MODE


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})

_PORT = re.compile(r"^(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?$", re.IGNORECASE)


@dataclass(frozen=True)
class Scope:
    """The environment at one point of the build. `args` are the ARGs declared so far
    (value None: declared with no default and no build arg, so unset)."""

    source: str
    escape: str
    build_args: Mapping[str, str] = field(default_factory=_empty)
    global_args: Mapping[str, str | None] = field(default_factory=_empty)
    args: Mapping[str, str | None] = field(default_factory=_empty)
    env: Mapping[str, str] = field(default_factory=_empty)
    used_build_args: frozenset[str] = field(default=frozenset())

    def variables(self) -> dict[str, str]:
        """What `$NAME` sees: ARG values, then ENV on top."""
        out = {k: v for k, v in self.args.items() if v is not None}
        out.update(self.env)
        return out

    def run_env(self) -> dict[str, str]:
        """The environment of a RUN: ARG values (not stored in the image) then ENV."""
        return self.variables()


def global_scope(dockerfile: ins.Dockerfile, build_args: Mapping[str, str] | None = None,
                 automatic: Mapping[str, str] | None = None) -> Scope:
    """The scope of FROM lines: the global ARGs, each a --build-arg or its default.
    `automatic` are BuildKit's predefined global ARGs (`platform_args`): usable in FROM
    without a declaration, and in a stage after `ARG TARGETARCH`. A global ARG of the same
    name follows the usual rules (build arg, else its default, else the automatic value)."""
    seeded: Mapping[str, str | None] = MappingProxyType(dict(automatic or {}))
    scope = Scope(dockerfile.source, dockerfile.escape,
                  build_args=MappingProxyType(dict(build_args or {})),
                  global_args=seeded, args=seeded)
    for arg in dockerfile.global_args:
        scope = _declare(scope, arg)
    return replace(scope, global_args=scope.args)


def platform_args(os_: str = "linux", arch: str = "amd64", variant: str = "") -> dict[str, str]:
    """BuildKit's automatic platform ARGs for a build on and for one platform (skiff builds
    for the node it runs on, so BUILD* and TARGET* agree)."""
    platform = f"{os_}/{arch}" + (f"/{variant}" if variant else "")
    out: dict[str, str] = {}
    for prefix in ("BUILD", "TARGET"):
        out.update({f"{prefix}PLATFORM": platform, f"{prefix}OS": os_,
                    f"{prefix}ARCH": arch, f"{prefix}VARIANT": variant})
    return out


def stage_scope(globals_: Scope, base_env: Mapping[str, str] | None = None) -> Scope:
    """The scope at the start of a stage: no ARGs, ENV from the base image (or the base
    stage), global ARG values kept for `ARG NAME` redeclarations."""
    return replace(globals_, args=_empty(), env=MappingProxyType(dict(base_env or {})))


def expand_from(globals_: Scope, from_: ins.From) -> str:
    """The FROM image with the global ARGs expanded: `FROM ${BASE:-alpine}`."""
    image = _expand(globals_, from_, from_.image)
    if not image:
        raise DockerfileError(globals_.source, from_.line,
                              f"FROM {from_.image} expands to an empty image name")
    return image


def step(scope: Scope, instruction: ins.Instruction) -> tuple[ins.Instruction, Scope]:
    """The instruction expanded with `scope`, and the scope after it."""
    if isinstance(instruction, ins.Arg):
        return instruction, _declare(scope, instruction)
    expanded = expand_instruction(scope, instruction)
    if isinstance(expanded, ins.Env):
        env = dict(scope.env)
        env.update(expanded.pairs)
        return expanded, replace(scope, env=MappingProxyType(env))
    return expanded, scope


def _declare(scope: Scope, arg: ins.Arg) -> Scope:
    variables = scope.variables()
    args = dict(scope.args)
    used = set(scope.used_build_args)
    for decl in arg.args:
        value: str | None
        if decl.name in scope.build_args:
            value = scope.build_args[decl.name]
            used.add(decl.name)
        elif decl.default is not None:
            value = _expand(scope, arg, decl.default, variables)
        else:
            value = scope.global_args.get(decl.name)
        args[decl.name] = value
    return replace(scope, args=MappingProxyType(args), used_build_args=frozenset(used))


def _expand(scope: Scope, instruction: ins.Instruction, word: str,
            variables: Mapping[str, str] | None = None) -> str:
    try:
        return expand(word, scope.variables() if variables is None else variables,
                      scope.escape)
    except ExpandError as exc:
        raise DockerfileError(scope.source, instruction.line,
                              f"{instruction.keyword}: {exc}") from None


def _fail(scope: Scope, instruction: ins.Instruction, message: str) -> DockerfileError:
    return DockerfileError(scope.source, instruction.line, f"{instruction.keyword}: {message}")


def expand_instruction(scope: Scope, instruction: ins.Instruction) -> ins.Instruction:
    """A copy of `instruction` with its variables expanded and its quotes removed, for the
    instructions Docker expands; the others are returned as they are."""
    variables = scope.variables()

    def x(word: str) -> str:
        return _expand(scope, instruction, word, variables)

    def x_opt(word: str | None) -> str | None:
        return None if word is None else x(word)

    match instruction:
        case ins.Copy():
            copy = replace(instruction, sources=tuple(x(s) for s in instruction.sources),
                           dest=x(instruction.dest), chown=x_opt(instruction.chown),
                           chmod=x_opt(instruction.chmod), from_=x_opt(instruction.from_))
            _check_common(scope, copy, copy.chmod, copy.chown)
            return copy
        case ins.Add():
            add = replace(instruction, sources=tuple(x(s) for s in instruction.sources),
                          dest=x(instruction.dest), chown=x_opt(instruction.chown),
                          chmod=x_opt(instruction.chmod), checksum=x_opt(instruction.checksum))
            _check_common(scope, add, add.chmod, add.chown)
            return add
        case ins.Workdir():
            path = x(instruction.path)
            if not path:
                raise _fail(scope, instruction, f"{instruction.path!r} expands to nothing")
            return replace(instruction, path=path)
        case ins.Env() | ins.Label():
            pairs = tuple((x(k), x(v)) for k, v in instruction.pairs)
            for key, _ in pairs:
                if not key or (isinstance(instruction, ins.Env) and "=" in key):
                    raise _fail(scope, instruction, f"invalid name {key!r}")
            return replace(instruction, pairs=pairs)
        case ins.Expose():
            ports = tuple(x(p) for p in instruction.ports)
            for port in ports:
                _check_port(scope, instruction, port)
            return replace(instruction, ports=ports)
        case ins.User():
            user = x(instruction.user)
            if not user or user.startswith(":") or user.endswith(":"):
                raise _fail(scope, instruction, f"invalid user {user!r} (user[:group])")
            return replace(instruction, user=user)
        case ins.Stopsignal():
            sig = x(instruction.signal)
            _check_signal(scope, instruction, sig)
            return replace(instruction, signal=sig)
        case ins.Volume():
            paths = tuple(x(p) for p in instruction.paths)
            if any(not p for p in paths):
                raise _fail(scope, instruction, "a volume path expands to nothing")
            return replace(instruction, paths=paths)
        case ins.From():
            return replace(instruction, image=expand_from(scope, instruction))
    return instruction


def _check_common(scope: Scope, instruction: ins.Instruction, chmod: str | None,
                  chown: str | None) -> None:
    if chmod is not None and not OCTAL_MODE.match(chmod):
        raise _fail(scope, instruction, f"--chmod={chmod} is not an octal mode like 755")
    if chown is not None and (not chown or chown.startswith(":") or chown.endswith(":")):
        raise _fail(scope, instruction, f"--chown={chown!r} is not user[:group]")


def _check_port(scope: Scope, instruction: ins.Instruction, port: str) -> None:
    match = _PORT.match(port)
    low = int(match.group(1)) if match else 0
    high = int(match.group(2) or low) if match else 0
    if not match or not 0 < low <= high <= 65535:
        raise _fail(scope, instruction, f"invalid port {port!r} (expected like 80, 80/tcp, "
                    "53/udp or 8000-8010)")


def signal_number(name: str) -> int | None:
    """`SIGTERM`, `TERM`, `15`, `SIGRTMIN+3` → the Linux number; None if unknown."""
    if name.isdigit():
        number = int(name)
        return number if 0 < number <= 64 else None
    upper = name.upper()
    upper = upper if upper.startswith("SIG") else "SIG" + upper
    rt = re.match(r"^SIGRT(MIN|MAX)([+-]\d+)?$", upper)
    if rt:
        number = (34 if rt.group(1) == "MIN" else 64) + int(rt.group(2) or 0)
        return number if 34 <= number <= 64 else None
    try:
        return int(signal.Signals[upper])
    except KeyError:
        return None


def _check_signal(scope: Scope, instruction: ins.Instruction, sig: str) -> None:
    if signal_number(sig) is None:
        raise _fail(scope, instruction, f"unknown signal {sig!r} (expected like SIGTERM, "
                    "TERM or 15)")
