"""The typed instructions of a parsed Dockerfile. Values are as written (quotes kept,
variables unexpanded) for the instructions Docker expands, because expansion depends on
the build-time environment; `skiff.build.scope.expand_instruction` returns the expanded
copy step by step. Every instruction carries its line number and original text (for error
messages and the image history's `created_by`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """RUN, CMD, ENTRYPOINT and HEALTHCHECK commands. Shell form: `shell` True and `args`
    one string, run as SHELL + [string]; exec form: `args` is the argv (maybe empty)."""

    args: tuple[str, ...]
    shell: bool

    def argv(self, shell: Sequence[str] = ("/bin/sh", "-c")) -> list[str]:
        return [*shell, *self.args] if self.shell else list(self.args)


@dataclass(frozen=True)
class Instruction:
    line: int  # 1-based, where the instruction starts
    original: str  # the logical line as written (continuations joined)

    @property
    def keyword(self) -> str:
        return type(self).__name__.upper()


@dataclass(frozen=True)
class From(Instruction):
    image: str  # raw; may use global ARGs; "scratch" for the empty image
    name: str | None  # the AS name, lowercased (stage names are case-insensitive)
    platform: str | None  # accepted and ignored: skiff builds for the node it runs on


@dataclass(frozen=True)
class Run(Instruction):
    command: Command


@dataclass(frozen=True)
class Copy(Instruction):
    sources: tuple[str, ...]  # raw words (or JSON strings); at least one
    dest: str
    chown: str | None = None
    chmod: str | None = None
    from_: str | None = None  # stage name, stage index or image reference
    link: bool = False  # --link: accepted, no effect on skiff's layers


@dataclass(frozen=True)
class Add(Instruction):
    sources: tuple[str, ...]
    dest: str
    chown: str | None = None
    chmod: str | None = None
    checksum: str | None = None  # --checksum=sha256:... (for URL sources)
    link: bool = False


@dataclass(frozen=True)
class Workdir(Instruction):
    path: str


@dataclass(frozen=True)
class Env(Instruction):
    pairs: tuple[tuple[str, str], ...]  # in order; all expanded with the env before ENV


@dataclass(frozen=True)
class ArgDecl:
    name: str
    default: str | None  # None: `ARG NAME` (no default)


@dataclass(frozen=True)
class Arg(Instruction):
    args: tuple[ArgDecl, ...]  # `ARG a=1 b` declares two


@dataclass(frozen=True)
class Label(Instruction):
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Expose(Instruction):
    ports: tuple[str, ...]  # `80`, `80/tcp`, `53/udp`, `8000-8010`


@dataclass(frozen=True)
class User(Instruction):
    user: str  # `name`, `uid`, `name:group`, `uid:gid`


@dataclass(frozen=True)
class Cmd(Instruction):
    command: Command


@dataclass(frozen=True)
class Entrypoint(Instruction):
    command: Command


@dataclass(frozen=True)
class Stopsignal(Instruction):
    signal: str


@dataclass(frozen=True)
class Healthcheck(Instruction):
    """`test` is the image config's Healthcheck.Test: ["NONE"], ["CMD", argv...] or
    ["CMD-SHELL", command]. Durations in nanoseconds as the config stores them; None when
    not given (the runtime default)."""

    test: tuple[str, ...]
    interval_ns: int | None = None
    timeout_ns: int | None = None
    start_period_ns: int | None = None
    start_interval_ns: int | None = None
    retries: int | None = None


@dataclass(frozen=True)
class Shell(Instruction):
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Volume(Instruction):
    paths: tuple[str, ...]  # recorded in the config's Volumes; the runtime decides


@dataclass(frozen=True)
class Maintainer(Instruction):
    name: str  # deprecated by Docker; recorded as the image's author


@dataclass(frozen=True)
class Onbuild(Instruction):
    """Recorded in the config's OnBuild as `expression`; the trigger is parsed so a broken
    one fails now. skiff does not run the triggers of a base image (yet)."""

    trigger: Instruction | None = None
    expression: str = ""


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None  # lowercased AS name
    from_: From
    instructions: tuple[Instruction, ...]  # after the FROM

    @property
    def base(self) -> str:
        return self.from_.image

    @property
    def label(self) -> str:
        """How messages name the stage: `builder` or `#0`."""
        return self.name if self.name is not None else f"#{self.index}"


@dataclass(frozen=True)
class Dockerfile:
    source: str  # file name for messages ("Dockerfile", "docker/Dockerfile.prod")
    escape: str
    syntax: str | None
    global_args: tuple[Arg, ...]  # ARGs before the first FROM: usable in FROM lines
    stages: tuple[Stage, ...]  # at least one
    warnings: tuple[str, ...] = ()
