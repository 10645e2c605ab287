"""How `skiff build` shows a build as it streams in.

plain: one line per event (BuildEvent.render), every RUN output line included: logs and
CI. tty: the running step with its last few output lines, redrawn in place, and one
summary line per finished step (CACHED or its time); a failed step's whole output is
printed. `auto` is tty on a terminal, plain otherwise, like BuildKit's --progress."""

from __future__ import annotations

import sys
from collections import deque
from typing import Protocol, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from skiff.build.events import BuildEvent

TTY_TAIL = 6  # output lines shown under the running step
FAILED_OUTPUT = 200  # lines of a failed step's output kept for printing


class BuildProgress(Protocol):
    def status(self, text: str) -> None: ...
    def event(self, event: BuildEvent) -> None: ...
    def close(self) -> None: ...


class PlainProgress:
    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def status(self, text: str) -> None:
        print(f"=> {text}", file=self.out, flush=True)

    def event(self, event: BuildEvent) -> None:
        print(event.render(), file=self.out, flush=True)

    def close(self) -> None:
        self.out.flush()


class TtyProgress:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self.live = Live(console=self.console, refresh_per_second=8, transient=True)
        self.live.start()
        self.current: BuildEvent | None = None
        self.output: deque[str] = deque(maxlen=FAILED_OUTPUT)

    def _head(self, event: BuildEvent) -> str:
        return f"[{event.stage}] {event.step}/{event.total} {event.instruction}"

    def _redraw(self) -> None:
        if self.current is None:
            self.live.update(Text(""))
            return
        lines = [Text(self._head(self.current), style="bold")]
        lines += [Text(f"  {x}", style="dim") for x in list(self.output)[-TTY_TAIL:]]
        self.live.update(Group(*lines))

    def status(self, text: str) -> None:
        self.console.print(f"=> {text}", style="cyan", highlight=False)

    def event(self, event: BuildEvent) -> None:
        if event.kind == "step":
            self.current = event
            self.output.clear()
        elif event.kind == "output":
            self.output.append(event.text)
        elif event.kind in ("cached", "done", "failed") and self.current is not None:
            head = self._head(self.current)
            if event.kind == "cached":
                self.console.print(Text(f"{head}  CACHED", style="green"))
            elif event.kind == "done":
                self.console.print(Text(f"{head}  {event.seconds:.1f}s"))
            else:
                self.console.print(Text(head, style="bold red"))
                for line in self.output:
                    self.console.print(Text(f"  | {line}"), highlight=False)
                self.console.print(Text(f"  failed: {event.text}", style="red"))
            self.current = None
        elif event.kind == "warning":
            self.console.print(Text(f"warning: {event.text}", style="yellow"))
        self._redraw()

    def close(self) -> None:
        self.live.stop()


def make_progress(mode: str) -> BuildProgress:
    if mode == "auto":
        mode = "tty" if sys.stdout.isatty() else "plain"
    return TtyProgress() if mode == "tty" else PlainProgress()
