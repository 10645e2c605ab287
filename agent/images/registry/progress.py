"""Progress of a push or pull, one event per blob step, for the CLI's lines and a task's
`pulling` status."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Action = Literal["exists", "pushing", "pushed", "pulling", "pulled", "mounted"]


@dataclass(frozen=True)
class BlobEvent:
    kind: Literal["config", "layer"]
    digest: str
    size: int
    action: Action
    index: int = 0   # position among the image's blobs (config last), for "2/5" displays
    total: int = 0


Progress = Callable[[BlobEvent], None]


def ignore(_event: BlobEvent) -> None:
    return None
