"""Stage lookup and the stages a build needs: `--target` picks the last stage to build,
and only the stages it depends on (its FROM base and its `COPY --from` sources, and
theirs) are built; the rest are skipped, as BuildKit does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from skiff.build import instructions as ins
from skiff.build.errors import DockerfileError
from skiff.build.scope import Scope, expand_from, global_scope, stage_scope, step

# Docker's predefined ARGs: usable as --build-arg without a declaration, never reported
# unused, and (Docker's rule) kept out of the image history.
PROXY_ARGS = tuple(n for name in ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY",
                                  "ALL_PROXY") for n in (name, name.lower()))


@dataclass(frozen=True)
class SourceRef:
    """What a FROM or `COPY --from` points at, after expansion."""

    kind: Literal["scratch", "stage", "image"]
    image: str = ""  # the image reference when kind is "image"
    stage: int | None = None  # the stage index when kind is "stage"


def find_stage(dockerfile: ins.Dockerfile, ref: str | int) -> ins.Stage | None:
    """A stage by index (`1`, `"1"`) or by name (case-insensitive)."""
    if isinstance(ref, int) or ref.isdigit():
        index = int(ref)
        return dockerfile.stages[index] if 0 <= index < len(dockerfile.stages) else None
    name = ref.lower()
    return next((s for s in dockerfile.stages if s.name == name), None)


def target_stage(dockerfile: ins.Dockerfile, target: str | None = None) -> ins.Stage:
    """The `--target` stage by name; the last stage when no target is given."""
    if target is None:
        return dockerfile.stages[-1]
    stage = find_stage(dockerfile, target) if not target.isdigit() else None
    if stage is None:
        names = [s.name for s in dockerfile.stages if s.name]
        known = f"stages: {', '.join(names)}" if names else "no stage has a name (FROM x AS name)"
        raise DockerfileError(dockerfile.source, None,
                              f"--target {target}: no stage named {target!r} ({known})")
    return stage


def resolve_base(dockerfile: ins.Dockerfile, stage: ins.Stage, globals_: Scope) -> SourceRef:
    """FROM's base: scratch, an earlier stage by name, or an image reference."""
    image = expand_from(globals_, stage.from_)
    if image.lower() == "scratch":
        return SourceRef("scratch")
    earlier = find_stage(dockerfile, image) if not image.isdigit() else None
    if earlier is not None and earlier.index < stage.index:
        return SourceRef("stage", stage=earlier.index)
    return SourceRef("image", image=image)


def resolve_copy_from(dockerfile: ins.Dockerfile, stage: ins.Stage, copy: ins.Copy,
                      value: str) -> SourceRef:
    """An expanded `--from` value: an earlier stage (by index or name), else an image."""
    def fail(message: str) -> DockerfileError:
        return DockerfileError(dockerfile.source, copy.line, f"COPY --from={value}: {message}")

    if value.isdigit():
        if int(value) >= stage.index:
            raise fail(f"stage {value} is not an earlier stage (this is stage {stage.index})")
        return SourceRef("stage", stage=int(value))
    other = find_stage(dockerfile, value)
    if other is not None:
        if other.index >= stage.index:
            raise fail(f"stage {other.label!r} is not an earlier stage")
        return SourceRef("stage", stage=other.index)
    if not value:
        raise fail("expands to nothing")
    return SourceRef("image", image=value)


def stage_dependencies(dockerfile: ins.Dockerfile, stage: ins.Stage,
                       globals_: Scope) -> tuple[int, ...]:
    """Indexes of the stages `stage` uses directly. `--from` values are expanded with the
    stage's ARGs and ENVs (the base image's own Env is not known before it is pulled)."""
    deps: set[int] = set()
    base = resolve_base(dockerfile, stage, globals_)
    if base.stage is not None:
        deps.add(base.stage)
    scope = stage_scope(globals_)
    for instruction in stage.instructions:
        if isinstance(instruction, ins.Copy) and instruction.from_ is not None:
            expanded, _ = step(scope, instruction)
            assert isinstance(expanded, ins.Copy) and expanded.from_ is not None
            ref = resolve_copy_from(dockerfile, stage, instruction, expanded.from_)
            if ref.stage is not None:
                deps.add(ref.stage)
        elif isinstance(instruction, ins.Arg | ins.Env):
            _, scope = step(scope, instruction)
    return tuple(sorted(deps))


def needed_stages(dockerfile: ins.Dockerfile, target: str | None = None,
                  build_args: Mapping[str, str] | None = None,
                  automatic: Mapping[str, str] | None = None) -> tuple[ins.Stage, ...]:
    """The stages to build for `target`, in Dockerfile order (dependencies first)."""
    final = target_stage(dockerfile, target)
    globals_ = global_scope(dockerfile, build_args, automatic)
    needed = {final.index}
    todo = [final.index]
    while todo:
        stage = dockerfile.stages[todo.pop()]
        for dep in stage_dependencies(dockerfile, stage, globals_):
            if dep not in needed:
                needed.add(dep)
                todo.append(dep)
    return tuple(dockerfile.stages[i] for i in sorted(needed))


def unused_build_args(dockerfile: ins.Dockerfile, build_args: Mapping[str, str],
                      stages: tuple[ins.Stage, ...] | None = None) -> list[str]:
    """--build-arg names no ARG of the global scope or of `stages` declares (Docker warns
    "One or more build-args were not consumed")."""
    chosen = dockerfile.stages if stages is None else stages
    declared = set(PROXY_ARGS)
    declared |= {d.name for a in dockerfile.global_args for d in a.args}
    declared |= {d.name for s in chosen for i in s.instructions if isinstance(i, ins.Arg)
                 for d in i.args}
    return sorted(set(build_args) - declared)
