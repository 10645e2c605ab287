"""A Dockerfile's text → `Dockerfile` (global ARGs and stages), with the checks that span
lines: ARG is the only instruction before the first FROM, stage names are unique, and
`COPY --from` names an earlier stage (a name or index), or else an image."""

from __future__ import annotations

from skiff.build import instructions as ins
from skiff.build.errors import DockerfileError
from skiff.build.instr_parse import parse_instruction
from skiff.build.lines import logical_lines
from skiff.build.words import unquote


def parse_dockerfile(text: str, source: str = "Dockerfile") -> ins.Dockerfile:
    directives, lines = logical_lines(text, source)
    escape = directives.escape
    global_args: list[ins.Arg] = []
    stages: list[ins.Stage] = []
    current: ins.From | None = None
    body: list[ins.Instruction] = []
    names: dict[str, int] = {}  # stage name -> line of its FROM
    warnings = [f"{source}: {w}" for ll in lines for w in ll.warnings]

    def close_stage() -> None:
        if current is not None:
            stages.append(ins.Stage(len(stages), current.name, current, tuple(body)))

    for line in lines:
        instruction = parse_instruction(line, escape, source)
        if isinstance(instruction, ins.From):
            close_stage()
            current, body = instruction, []
            if instruction.name is not None:
                if instruction.name in names:
                    raise DockerfileError(
                        source, line.line, f"duplicate stage name {instruction.name!r} "
                        f"(first defined on line {names[instruction.name]})")
                names[instruction.name] = line.line
        elif current is None:
            if not isinstance(instruction, ins.Arg):
                raise DockerfileError(
                    source, line.line, f"{instruction.keyword} before the first FROM: only "
                    "ARG may come before FROM")
            global_args.append(instruction)
        else:
            body.append(instruction)
    close_stage()
    if not stages:
        raise DockerfileError(source, None, "no FROM instruction: a Dockerfile needs at "
                              "least one FROM (the base image, or scratch)")
    for stage in stages:
        for instruction in stage.instructions:
            if isinstance(instruction, ins.Copy) and instruction.from_ is not None:
                _check_copy_from(stages, stage, instruction, escape, source)
    return ins.Dockerfile(source=source, escape=escape, syntax=directives.syntax,
                          global_args=tuple(global_args), stages=tuple(stages),
                          warnings=tuple(warnings))


def _check_copy_from(stages: list[ins.Stage], stage: ins.Stage, copy: ins.Copy,
                     escape: str, source: str) -> None:
    """A stage index must be an earlier stage; a name of this or a later stage is refused
    (Docker would read it as an image and fail far from the cause); any other name is an
    image reference. Values with variables are checked when the build expands them."""
    raw = copy.from_ or ""
    if "$" in raw:
        return
    value = unquote(raw, escape).lower()
    if value.isdigit():
        if int(value) >= stage.index:
            raise DockerfileError(source, copy.line, f"COPY --from={value}: stage {value} is "
                                  f"not an earlier stage (this is stage {stage.index}; "
                                  f"{_earlier(stages, stage)})")
        return
    for other in stages[stage.index:]:
        if other.name == value:
            where = "its own stage" if other is stage else \
                f"stage {value!r}, defined later on line {other.from_.line}"
            raise DockerfileError(source, copy.line, f"COPY --from={value} refers to {where}; "
                                  f"a stage can only copy from earlier stages "
                                  f"({_earlier(stages, stage)})")


def _earlier(stages: list[ins.Stage], stage: ins.Stage) -> str:
    labels = [f"{s.index}" + (f" ({s.name})" if s.name else "") for s in stages[:stage.index]]
    return "earlier stages: " + ", ".join(labels) if labels else "there is no earlier stage"
