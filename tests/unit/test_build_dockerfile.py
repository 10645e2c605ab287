"""Dockerfile parsing: directives, continuations, every instruction's forms, and the errors
that name the file and line."""

from __future__ import annotations

import pytest

from skiff.build import DockerfileError, parse_dockerfile
from skiff.build import instructions as ins


def parse(text: str) -> ins.Dockerfile:
    return parse_dockerfile(text.lstrip("\n"))


def body(text: str) -> tuple[ins.Instruction, ...]:
    """The first stage's instructions after `FROM x`."""
    return parse("FROM x\n" + text.lstrip("\n")).stages[0].instructions


def one(text: str) -> ins.Instruction:
    (instruction,) = body(text)
    return instruction


def error(text: str) -> DockerfileError:
    with pytest.raises(DockerfileError) as info:
        parse(text)
    return info.value


# --- directives, comments and continuations ---------------------------------------------

def test_directives_syntax_and_escape():
    df = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM x\n")
    assert df.syntax == "docker/dockerfile:1"
    assert df.escape == "`"


def test_directives_are_case_insensitive_and_spaced():
    assert parse("#  ESCAPE = `\nFROM x\n").escape == "`"


def test_directive_after_a_comment_is_a_comment():
    df = parse("# hello\n# escape=`\nFROM x\nRUN a \\\n b\n")
    assert df.escape == "\\"
    assert df.stages[0].instructions[0].original == "RUN a  b"


def test_directive_after_a_blank_line_or_unknown_directive_is_a_comment():
    assert parse_dockerfile("\n# escape=`\nFROM x\n").escape == "\\"
    assert parse("# foo=bar\n# escape=`\nFROM x\n").escape == "\\"


def test_duplicate_directive_is_refused():
    err = error("# escape=`\n# escape=\\\nFROM x\n")
    assert (err.line, "only one escape") == (2, err.message[:15])


def test_bad_escape_token():
    err = error("# escape=x\nFROM x\n")
    assert err.line == 1 and "invalid escape token 'x'" in err.message


def test_backtick_escape_windows_style_file():
    text = ("# escape=`\r\n\r\nFROM mcr.microsoft.com/windows\r\n"
            "COPY testfile.txt c:\\\r\n"
            "RUN dir c:\\ `\r\n    && echo done\r\n")
    df = parse(text)
    copy, run = df.stages[0].instructions
    assert isinstance(copy, ins.Copy) and copy.sources == ("testfile.txt",)
    assert copy.dest == "c:\\"  # the backslash is an ordinary character now
    assert isinstance(run, ins.Run)
    assert run.command.args == ("dir c:\\     && echo done",)
    assert run.line == 5


def test_continuation_with_comment_and_empty_lines():
    df = parse("FROM x\nRUN apt-get update \\\n# a comment\n    # indented comment\n\n"
               "    && apt-get install -y curl\nCMD x\n")
    run, cmd = df.stages[0].instructions
    assert run.original == "RUN apt-get update     && apt-get install -y curl"
    assert (run.line, cmd.line) == (2, 7)
    assert any("empty continuation line" in w for w in df.warnings)


def test_escape_followed_by_blanks_still_continues():
    assert one("RUN a \\  \t\n b\n").original == "RUN a  b"


def test_continuation_at_end_of_file():
    assert one("RUN a \\\n").original == "RUN a"


def test_hash_inside_a_line_is_text_and_keywords_are_case_insensitive():
    run = one("run echo # not a comment\n")
    assert isinstance(run, ins.Run) and run.command.args == ("echo # not a comment",)


def test_bom_and_leading_whitespace():
    df = parse("\ufeff  FROM x\n\t RUN y\n")
    assert df.stages[0].instructions[0].line == 2


# --- FROM and stages ------------------------------------------------------------------------

def test_from_forms():
    df = parse("ARG V=3\nFROM --platform=linux/amd64 alpine:${V} AS Build\nFROM scratch\n"
               "FROM build as final\n")
    assert [a.args[0].name for a in df.global_args] == ["V"]
    first, second, third = df.stages
    assert (first.base, first.name, first.from_.platform) == ("alpine:${V}", "build",
                                                              "linux/amd64")
    assert (second.base, second.name, second.label) == ("scratch", None, "#1")
    assert (third.index, third.name) == (2, "final")


@pytest.mark.parametrize("text, message", [
    ("FROM\n", "FROM: requires an image"),
    ("FROM a b\n", "one or three arguments"),
    ("FROM a AS\n", "one or three arguments"),
    ("FROM a AS 1x\n", "invalid stage name '1x'"),
    ("FROM --foo=1 a\n", "unknown flag --foo"),
])
def test_from_errors(text, message):
    err = error(text)
    assert err.line == 1 and message in err.message


def test_no_from():
    err = error("# only a comment\nARG A\n")
    assert err.line is None and "no FROM" in str(err)
    assert str(err).startswith("Dockerfile: no FROM")


def test_instruction_before_from():
    err = error("ARG A\nRUN echo\nFROM x\n")
    assert str(err) == "Dockerfile:2: RUN before the first FROM: only ARG may come before FROM"


def test_duplicate_stage_name():
    err = error("FROM a AS b\nFROM c AS B\n")
    assert err.line == 2 and "duplicate stage name 'b' (first defined on line 1)" in str(err)


def test_unknown_instruction_names_the_line_and_suggests():
    err = error("FROM x\nRUN a\n\n# c\n\nWORKDIR /\nCOPPY a b\n")
    assert str(err) == "Dockerfile:7: unknown instruction COPPY (did you mean COPY?)"


def test_source_name_in_messages():
    with pytest.raises(DockerfileError, match=r"^docker/prod\.Dockerfile:1: "):
        parse_dockerfile("FROMM x\n", source="docker/prod.Dockerfile")


# --- RUN, CMD, ENTRYPOINT, SHELL ----------------------------------------------------------

def test_run_shell_and_exec_forms():
    shell, exec_ = body('RUN echo "$HOME"\nRUN ["echo", "$HOME"]\n')
    assert shell.command == ins.Command(('echo "$HOME"',), shell=True)
    assert exec_.command == ins.Command(("echo", "$HOME"), shell=False)
    assert shell.command.argv() == ["/bin/sh", "-c", 'echo "$HOME"']
    assert exec_.command.argv(["bash", "-c"]) == ["echo", "$HOME"]


def test_shell_test_brackets_stay_shell_form():
    run = one('RUN [ -f /etc/x ] && echo yes\n')
    assert run.command.shell
    assert one('RUN [[ -n "$x" ]]\n').command.shell


@pytest.mark.parametrize("text, message", [
    ('RUN ["echo", "a"\n', "unterminated JSON array"),
    ("CMD ['python', 'app.py']\n", "invalid JSON array"),
    ('ENTRYPOINT ["a" "b"]\n', "invalid JSON array"),
    ('CMD ["a", 1]\n', "only strings"),
    ("RUN\n", "requires a command"),
    ("RUN []\n", "JSON array is empty"),
    ("RUN --mount=type=cache,target=/x make\n", "--mount is not supported"),
])
def test_command_errors(text, message):
    err = error("FROM x\n" + text)
    assert err.line == 2 and message in err.message, str(err)


def test_cmd_and_entrypoint():
    cmd, entry, empty = body('CMD python app.py\nENTRYPOINT ["/init"]\nCMD []\n')
    assert isinstance(cmd, ins.Cmd) and cmd.command.shell
    assert isinstance(entry, ins.Entrypoint) and entry.command.args == ("/init",)
    assert empty.command == ins.Command((), shell=False)


def test_flags_only_on_flagged_instructions():
    assert one("CMD --help\n").command.args == ("--help",)


def test_shell_instruction():
    assert one('SHELL ["/bin/bash", "-o", "pipefail", "-c"]\n').argv == (
        "/bin/bash", "-o", "pipefail", "-c")
    assert "JSON form" in error("FROM x\nSHELL /bin/bash -c\n").message
    assert "JSON form" in error("FROM x\nSHELL []\n").message


# --- COPY and ADD ---------------------------------------------------------------------------

def test_copy_forms_and_flags():
    copy = one("COPY --chown=app:app --chmod=0644 --link a 'b c' dir/ /dest/\n")
    assert isinstance(copy, ins.Copy)
    assert copy.sources == ("a", "'b c'", "dir/")
    assert (copy.dest, copy.chown, copy.chmod, copy.link) == ("/dest/", "app:app", "0644", True)
    json_copy = one('COPY ["a b", "/x y/"]\n')
    assert (json_copy.sources, json_copy.dest) == (("a b",), "/x y/")


def test_add_flags():
    add = one("ADD --checksum=sha256:abc --chown=1 https://x/y.tgz /y\n")
    assert isinstance(add, ins.Add)
    assert (add.checksum, add.chown, add.sources) == ("sha256:abc", "1", ("https://x/y.tgz",))


@pytest.mark.parametrize("text, message", [
    ("COPY a\n", "at least two arguments (a source and a destination), got 1: 'a'"),
    ("COPY\n", "got 0"),
    ('COPY ["a"]\n', "got 1"),
    ("COPY --chmod=rwx a b\n", "not an octal mode"),
    ("COPY --chown a b\n", "--chown needs a value"),
    ("COPY --from=a --from=b x y\n", "--from given twice"),
    ("COPY --parents a b\n", "unknown flag --parents"),
    ("ADD --from=x a b\n", "unknown flag --from"),
    ("COPY --link=maybe a b\n", "takes no value"),
])
def test_copy_errors(text, message):
    err = error("FROM x\n" + text)
    assert err.line == 2 and message in err.message, str(err)


def test_copy_from_stage_index_name_and_image():
    df = parse("FROM a AS one\nFROM b\nCOPY --from=0 x y\nCOPY --from=ONE x y\n"
               "COPY --from=nginx:1 x y\nCOPY --from=$S x y\n")
    assert [c.from_ for c in df.stages[1].instructions] == ["0", "ONE", "nginx:1", "$S"]


@pytest.mark.parametrize("text, line, message", [
    ("FROM a\nCOPY --from=0 x y\n", 2, "stage 0 is not an earlier stage (this is stage 0; "
                                       "there is no earlier stage)"),
    ("FROM a AS one\nFROM b\nCOPY --from=5 x y\n", 3, "earlier stages: 0 (one)"),
    ("FROM a AS one\nCOPY --from=one x y\n", 2, "refers to its own stage"),
    ("FROM a AS one\nCOPY --from=two x y\nFROM b AS two\n", 2,
     "refers to stage 'two', defined later on line 3"),
])
def test_copy_from_must_be_an_earlier_stage(text, line, message):
    err = error(text)
    assert err.line == line and message in err.message, str(err)


# --- ENV, ARG, LABEL and the rest ------------------------------------------------------

def test_env_both_forms():
    new, old, esc = body('ENV A=1 B="two words" C=\'$x\' D=\nENV E  spaced   value  \n'
                         'ENV F=a\\ b\n')
    assert new.pairs == (("A", "1"), ("B", '"two words"'), ("C", "'$x'"), ("D", ""))
    assert old.pairs == (("E", "spaced   value"),)
    assert esc.pairs == (("F", "a\\ b"),)


@pytest.mark.parametrize("text, message", [
    ("ENV\n", "at least one argument"),
    ("ENV A\n", "requires a value"),
    ("ENV A=1 B\n", "can't find = in 'B'"),
    ("ENV =1\n", "can not be blank"),
    ('ENV A="open\n', "unterminated double quote"),
    ("LABEL a\n", "requires a value"),
])
def test_env_errors(text, message):
    err = error("FROM x\n" + text)
    assert err.line == 2 and message in err.message, str(err)


def test_arg_forms():
    arg = one("ARG A B=2 C=\"x y\"\n")
    assert arg.args == (ins.ArgDecl("A", None), ins.ArgDecl("B", "2"),
                        ins.ArgDecl("C", '"x y"'))
    assert "at least one argument" in error("FROM x\nARG\n").message


def test_label_expose_user_workdir_stopsignal_volume_maintainer():
    label, expose, user, workdir, sig, vol, vol_json, maint = body(
        'LABEL "com.example.vendor"="ACME Inc" version=1.0\nEXPOSE 80 53/udp\n'
        "USER app:app\nWORKDIR /my app\nSTOPSIGNAL SIGQUIT\nVOLUME /data /logs\n"
        'VOLUME ["/x"]\nMAINTAINER Jane <jane@example.com>\n')
    assert label.pairs == (('"com.example.vendor"', '"ACME Inc"'), ("version", "1.0"))
    assert expose.ports == ("80", "53/udp")
    assert user.user == "app:app"
    assert workdir.path == "/my app"
    assert sig.signal == "SIGQUIT"
    assert (vol.paths, vol_json.paths) == (("/data", "/logs"), ("/x",))
    assert maint.name == "Jane <jane@example.com>"


@pytest.mark.parametrize("text, message", [
    ("USER a b\n", "exactly one argument"),
    ("USER\n", "exactly one argument"),
    ("WORKDIR\n", "requires a path"),
    ("EXPOSE\n", "at least one port"),
    ("STOPSIGNAL\n", "exactly one argument"),
    ('VOLUME [""]\n', "empty string"),
    ("MAINTAINER\n", "requires a name"),
])
def test_simple_instruction_errors(text, message):
    err = error("FROM x\n" + text)
    assert err.line == 2 and message in err.message, str(err)


# --- HEALTHCHECK and ONBUILD ------------------------------------------------------------

def test_healthcheck_forms():
    none, shell, exec_ = body(
        "HEALTHCHECK NONE\n"
        "HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=2s --retries=3 \\\n"
        "  CMD curl -f http://localhost/ || exit 1\n"
        'HEALTHCHECK --start-interval=1s CMD ["/check", "-q"]\n')
    assert none.test == ("NONE",)
    assert shell.test == ("CMD-SHELL", "curl -f http://localhost/ || exit 1")
    assert (shell.interval_ns, shell.timeout_ns, shell.start_period_ns, shell.retries) == (
        90_000_000_000, 500_000_000, 2_000_000_000, 3)
    assert exec_.test == ("CMD", "/check", "-q") and exec_.start_interval_ns == 1_000_000_000


@pytest.mark.parametrize("text, message", [
    ("HEALTHCHECK\n", "unknown type '(none)'"),
    ("HEALTHCHECK CMDX foo\n", "unknown type 'CMDX'"),
    ("HEALTHCHECK NONE foo\n", "NONE takes no arguments"),
    ("HEALTHCHECK --interval=5s NONE\n", "NONE takes no arguments and no flags"),
    ("HEALTHCHECK CMD\n", "requires a command"),
    ("HEALTHCHECK --interval=5 CMD x\n", "invalid duration '5'"),
    ("HEALTHCHECK --interval=10us CMD x\n", "less than 1ms"),
    ("HEALTHCHECK --retries=-1 CMD x\n", "whole number"),
    ("HEALTHCHECK --foo=1 CMD x\n", "unknown flag --foo"),
])
def test_healthcheck_errors(text, message):
    err = error("FROM x\n" + text)
    assert err.line == 2 and message in err.message, str(err)


def test_onbuild_is_recorded_with_its_parsed_trigger():
    onbuild = one("ONBUILD COPY . /app\n")
    assert isinstance(onbuild, ins.Onbuild) and onbuild.expression == "COPY . /app"
    assert isinstance(onbuild.trigger, ins.Copy) and onbuild.trigger.dest == "/app"


@pytest.mark.parametrize("text, message", [
    ("ONBUILD\n", "requires an instruction"),
    ("ONBUILD ONBUILD RUN x\n", "ONBUILD isn't allowed as an ONBUILD trigger"),
    ("ONBUILD FROM x\n", "FROM isn't allowed"),
    ("ONBUILD COPY a\n", "trigger: COPY: requires at least two arguments"),
    ("ONBUILD COPPY a b\n", "trigger: unknown instruction COPPY"),
])
def test_onbuild_errors(text, message):
    err = error("FROM x\n" + text)
    assert err.line == 2 and message in err.message, str(err)


def test_every_instruction_keeps_line_and_original_text():
    df = parse("FROM x\n\nRUN a \\\n  b\n# c\nENV A=1\n")
    run, env = df.stages[0].instructions
    assert (run.line, run.original, run.keyword) == (3, "RUN a   b", "RUN")
    assert (env.line, env.original, env.keyword) == (6, "ENV A=1", "ENV")
    assert df.stages[0].from_.line == 1
