"""What a build returns (BuildResult with a StepResult per step); what it reports as it
goes is skiff.build.events.BuildEvent, shared with the CLI that prints it."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.images.models import Image
from skiff.build.events import BuildEvent


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


__all__ = ["BuildEvent", "BuildResult", "StepResult"]
