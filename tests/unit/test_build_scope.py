"""The build-time environment: ARG scoping across FROM, ENV precedence, which instructions
are expanded, and the stages a target needs."""

from __future__ import annotations

import pytest

from skiff.build import (
    DockerfileError,
    expand_from,
    expand_instruction,
    find_stage,
    global_scope,
    needed_stages,
    parse_dockerfile,
    platform_args,
    resolve_base,
    resolve_copy_from,
    stage_scope,
    step,
    target_stage,
    unused_build_args,
)
from skiff.build import instructions as ins
from skiff.build.scope import Scope, signal_number


def walk(text: str, build_args: dict[str, str] | None = None, stage: int = -1,
         base_env: dict[str, str] | None = None) -> tuple[list[ins.Instruction], Scope]:
    """Step through one stage; the expanded instructions and the final scope."""
    df = parse_dockerfile(text.lstrip("\n"))
    scope = stage_scope(global_scope(df, build_args), base_env)
    out = []
    for instruction in df.stages[stage].instructions:
        expanded, scope = step(scope, instruction)
        out.append(expanded)
    return out, scope


def test_arg_before_from_is_usable_in_from_only():
    text = "ARG VERSION=1.2\nARG IMG=alpine:${VERSION}\nFROM $IMG\nRUN x\nENV V=${VERSION}\n"
    df = parse_dockerfile(text)
    globals_ = global_scope(df)
    assert expand_from(globals_, df.stages[0].from_) == "alpine:1.2"
    steps, _scope = walk(text)
    assert steps[1].pairs == (("V", ""),)  # not visible inside the stage


def test_redeclared_global_arg_takes_the_global_value_or_build_arg():
    text = "ARG V=1\nFROM x\nARG V\nENV A=$V\n"
    assert walk(text)[0][1].pairs == (("A", "1"),)
    assert walk(text, {"V": "9"})[0][1].pairs == (("A", "9"),)


def test_stage_default_beats_global_default_but_not_build_arg():
    text = "ARG V=global\nFROM x\nARG V=stage\nENV A=$V\n"
    assert walk(text)[0][1].pairs == (("A", "stage"),)
    assert walk(text, {"V": "cli"})[0][1].pairs == (("A", "cli"),)


def test_arg_scope_ends_with_the_stage():
    text = "FROM x AS one\nARG V=1\nFROM x\nENV A=x$V\n"
    assert walk(text)[0][0].pairs == (("A", "x"),)


def test_arg_without_value_is_unset():
    steps, scope = walk("FROM x\nARG V\nENV A=${V-unset}\n")
    assert steps[1].pairs == (("A", "unset"),)
    assert "V" in scope.args and "V" not in scope.variables()


def test_env_overrides_arg_and_base_env_seeds():
    steps, scope = walk("FROM x\nENV V=env\nARG V=arg\nWORKDIR /$V$PATH\n",
                        base_env={"PATH": "/bin"})
    assert steps[2].path == "/env/bin"
    assert scope.env == {"PATH": "/bin", "V": "env"}
    assert scope.run_env() == {"V": "env", "PATH": "/bin"}


def test_env_pairs_see_the_env_before_the_instruction():
    steps, _scope = walk("FROM x\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n")
    assert steps[1].pairs == (("abc", "bye"), ("def", "hello"))
    assert steps[2].pairs == (("ghi", "bye"),)


def test_arg_default_uses_earlier_values():
    steps, _scope = walk("FROM x\nARG A=1\nARG B=${A}2\nLABEL b=$B\n")
    assert steps[2].pairs == (("b", "12"),)


def test_expanded_instructions():
    text = ('FROM x\nARG D=/srv\nENV U=app F="a b"\n'
            "COPY --chown=$U:$U --chmod=${M:-644} src/$F ${D}/\n"
            "ADD --chown=$U https://x/$U.tgz $D\n"
            "WORKDIR $D/app\nLABEL \"$U.name\"=\"$F\"\nEXPOSE ${P:-8080}/tcp\n"
            "USER $U\nSTOPSIGNAL SIG${S:-TERM}\nVOLUME $D/data\n")
    steps, _ = walk(text)
    copy, add, workdir, label, expose, user, sig, vol = steps[2:]
    assert (copy.sources, copy.dest, copy.chown, copy.chmod) == (
        ("src/a b",), "/srv/", "app:app", "644")
    assert (add.sources, add.dest, add.chown) == (("https://x/app.tgz",), "/srv", "app")
    assert workdir.path == "/srv/app"
    assert label.pairs == (("app.name", "a b"),)
    assert expose.ports == ("8080/tcp",)
    assert (user.user, sig.signal, vol.paths) == ("app", "SIGTERM", ("/srv/data",))


def test_run_cmd_entrypoint_healthcheck_are_not_expanded():
    text = ("FROM x\nENV A=1\nRUN echo $A\nCMD echo $A\nENTRYPOINT [\"$A\"]\n"
            "HEALTHCHECK CMD test $A\nSHELL [\"$A\"]\nONBUILD RUN $A\n")
    df = parse_dockerfile(text)
    steps, _ = walk(text)
    assert steps[1:] == list(df.stages[0].instructions[1:])


@pytest.mark.parametrize("line, message", [
    ("EXPOSE $P\n", "invalid port ''"),
    ("EXPOSE 80/xtp\n", "invalid port '80/xtp'"),
    ("EXPOSE 70000\n", "invalid port"),
    ("EXPOSE 90-80\n", "invalid port"),
    ("STOPSIGNAL SIGNOPE\n", "unknown signal 'SIGNOPE'"),
    ("USER $NOBODY\n", "invalid user ''"),
    ("WORKDIR $NOTHING\n", "expands to nothing"),
    ("COPY --chmod=$M a b\n", "--chmod= is not an octal mode"),
    ("COPY --chown=${U}: a b\n", "is not user[:group]"),
    ('ENV A="${B:?B is required}"\n', "B: B is required"),
    ("LABEL $E=x\n", "invalid name ''"),
    ("VOLUME $X\n", "expands to nothing"),
])
def test_expansion_errors_name_the_line(line, message):
    with pytest.raises(DockerfileError) as info:
        walk("FROM x\n" + line)
    assert info.value.line == 2 and message in info.value.message, str(info.value)


def test_from_expanding_to_nothing():
    df = parse_dockerfile("ARG B\nFROM $B\n")
    with pytest.raises(DockerfileError, match="Dockerfile:2: FROM \\$B expands to an empty"):
        expand_from(global_scope(df), df.stages[0].from_)


def test_expand_instruction_is_identity_for_other_kinds():
    df = parse_dockerfile("FROM x\nRUN $A\n")
    run = df.stages[0].instructions[0]
    assert expand_instruction(stage_scope(global_scope(df)), run) is run


def test_signal_numbers():
    assert signal_number("SIGTERM") == signal_number("term") == signal_number("15") == 15
    assert signal_number("SIGRTMIN+3") == 37
    assert signal_number("65") is None and signal_number("SIGRTMAX+1") is None


# --- stages -------------------------------------------------------------------------------

MULTI = """
ARG BASE=alpine
FROM $BASE AS deps
RUN install
FROM deps AS build
COPY --from=golang:1 /x /y
RUN make
FROM golang AS tools
FROM scratch AS docs
FROM busybox AS final
ARG FROM_STAGE=build
COPY --from=${FROM_STAGE} /app /app
COPY --from=0 /lib /lib
COPY --from=nginx:1 /etc/nginx /etc/nginx
"""


def test_stage_lookup():
    df = parse_dockerfile(MULTI)
    assert find_stage(df, "BUILD").index == 1
    assert find_stage(df, 4).name == "final"
    assert find_stage(df, "4").name == "final"
    assert find_stage(df, "nope") is None and find_stage(df, 9) is None
    assert target_stage(df).name == "final"
    assert target_stage(df, "deps").index == 0


def test_unknown_target():
    df = parse_dockerfile(MULTI)
    with pytest.raises(DockerfileError) as info:
        target_stage(df, "prod")
    assert str(info.value) == ("Dockerfile: --target prod: no stage named 'prod' "
                               "(stages: deps, build, tools, docs, final)")
    with pytest.raises(DockerfileError, match="no stage has a name"):
        target_stage(parse_dockerfile("FROM a\n"), "x")


def test_resolve_base():
    df = parse_dockerfile(MULTI)
    globals_ = global_scope(df, {"BASE": "debian:bookworm"})
    assert resolve_base(df, df.stages[0], globals_).image == "debian:bookworm"
    assert resolve_base(df, df.stages[1], globals_).stage == 0
    assert resolve_base(df, df.stages[3], globals_).kind == "scratch"
    later = parse_dockerfile("FROM b AS a\nFROM x AS b\n")
    # A FROM naming a later stage means an image of that name, as in Docker.
    assert resolve_base(later, later.stages[0], global_scope(later)).image == "b"


def test_resolve_copy_from():
    df = parse_dockerfile(MULTI)
    final = df.stages[4]
    copy = final.instructions[1]
    assert resolve_copy_from(df, final, copy, "build").stage == 1
    assert resolve_copy_from(df, final, copy, "2").stage == 2
    assert resolve_copy_from(df, final, copy, "nginx").image == "nginx"
    with pytest.raises(DockerfileError, match="stage 'final' is not an earlier stage"):
        resolve_copy_from(df, final, copy, "final")
    with pytest.raises(DockerfileError, match="stage 7 is not an earlier stage"):
        resolve_copy_from(df, final, copy, "7")


def test_needed_stages_follow_from_and_copy_from():
    df = parse_dockerfile(MULTI)
    assert [s.name for s in needed_stages(df)] == ["deps", "build", "final"]
    assert [s.name for s in needed_stages(df, "build")] == ["deps", "build"]
    assert [s.name for s in needed_stages(df, "docs")] == ["docs"]
    # --from with a stage ARG overridden by a build arg
    assert [s.name for s in needed_stages(df, build_args={"FROM_STAGE": "tools"})] == [
        "deps", "tools", "final"]


def test_unused_build_args():
    df = parse_dockerfile(MULTI)
    assert unused_build_args(df, {"BASE": "x", "FROM_STAGE": "y", "OTHER": "z"}) == ["OTHER"]
    assert unused_build_args(df, {"FROM_STAGE": "y"}, needed_stages(df, "build")) == [
        "FROM_STAGE"]


def test_used_build_args_are_tracked():
    _, scope = walk("ARG A\nFROM x\nARG A\nARG B\n", {"A": "1", "C": "3"})
    assert scope.used_build_args == {"A"}


def test_automatic_platform_args():
    auto = platform_args("linux", "arm64")
    text = ("FROM --platform=$BUILDPLATFORM golang:${TARGETARCH}\nARG TARGETARCH\n"
            "ENV A=$TARGETARCH\n")
    df = parse_dockerfile(text)
    globals_ = global_scope(df, automatic=auto)
    assert expand_from(globals_, df.stages[0].from_) == "golang:arm64"
    scope = stage_scope(globals_)
    _, scope = step(scope, df.stages[0].instructions[0])
    expanded, _ = step(scope, df.stages[0].instructions[1])
    assert expanded.pairs == (("A", "arm64"),)
    # undeclared in the stage, they stay invisible there
    df2 = parse_dockerfile("FROM x\nENV A=$TARGETOS\n")
    env, _ = step(stage_scope(global_scope(df2, automatic=auto)), df2.stages[0].instructions[0])
    assert env.pairs == (("A", ""),)
    # a global `ARG TARGETARCH` keeps the automatic value unless a build arg is given
    df3 = parse_dockerfile("ARG TARGETARCH\nFROM golang:$TARGETARCH\n")
    assert expand_from(global_scope(df3, automatic=auto), df3.stages[0].from_) == "golang:arm64"
    assert expand_from(global_scope(df3, {"TARGETARCH": "riscv64"}, auto),
                       df3.stages[0].from_) == "golang:riscv64"


def test_proxy_build_args_are_never_unused():
    df = parse_dockerfile("FROM x\n")
    assert unused_build_args(df, {"HTTP_PROXY": "h", "no_proxy": "n", "X": "1"}) == ["X"]
