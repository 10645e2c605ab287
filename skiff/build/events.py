"""What a build reports as it goes: BuildEvent, made by the agent's builder, sent to the
CLI as one JSON line each (`to_wire`/`from_wire`) and printed there (`render`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

EventKind = Literal["step", "output", "cached", "done", "failed", "warning"]
_KINDS = frozenset(get_args(EventKind))


@dataclass(frozen=True)
class BuildEvent:
    """`step` starts a step; `output` is one line a RUN printed; `cached` or `done` ends a
    step (with its time); `failed` ends it with the error; `warning` is build-wide."""

    kind: EventKind
    stage: str = ""  # the stage's label: its AS name or `#index`
    step: int = 0  # 1-based within the stage (FROM is step 1)
    total: int = 0  # steps of the stage
    instruction: str = ""  # as written in the Dockerfile
    text: str = ""  # the output line, the warning or the error
    seconds: float = 0.0

    def render(self) -> str:
        """The line `skiff build --progress plain` prints for this event."""
        if self.kind == "step":
            return f"[{self.stage}] STEP {self.step}/{self.total}: {self.instruction}"
        if self.kind == "output":
            return f"  {self.text}"
        if self.kind == "cached":
            return "  ---> CACHED"
        if self.kind == "done":
            return f"  ---> done in {self.seconds:.1f}s"
        if self.kind == "failed":
            return f"  ---> failed: {self.text}"
        return f"warning: {self.text}"

    def to_wire(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_wire(cls, data: Any) -> BuildEvent:
        """Raises ValueError for anything that is not an event."""
        if not isinstance(data, dict) or data.get("kind") not in _KINDS:
            raise ValueError(f"not a build event: {data!r:.200}")
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in fields:
                continue
            expected = {"int": int, "float": (int, float)}.get(str(fields[key]), str)
            if key == "kind" or (isinstance(value, expected) and not isinstance(value, bool)):
                kwargs[key] = float(value) if key == "seconds" else value
            else:
                raise ValueError(f"build event field {key}={value!r:.80} has the wrong type")
        return cls(**kwargs)
