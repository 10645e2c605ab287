"""What a build reports as it goes (BuildEvent, for streaming to the CLI) and what it
returns (BuildResult with a StepResult per step)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from agent.images.models import Image

EventKind = Literal["step", "output", "cached", "done", "failed", "warning"]


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


@dataclass(frozen=True)
class StepResult:
    stage: str
    step: int
    total: int
    instruction: str
    line: int  # Dockerfile line
    cached: bool
    seconds: float
    diff_id: str | None = None  # the layer this step added, if any


@dataclass(frozen=True)
class BuildResult:
    image: Image
    steps: list[StepResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
