"""Reading a container's logs: every rotated file in order, a tail, and ``follow``.

Lines come back without their newline, prefixed with the record's RFC 3339 time when
``timestamps`` is true (``skiff logs -t``).
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import BinaryIO

from agent.runtime.logfile import LogEntry, all_files, rotated_files

FOLLOW_INTERVAL = 0.1


def _entries(lines: Iterable[bytes]) -> Iterable[LogEntry]:
    for line in lines:
        entry = LogEntry.parse(line)
        if entry is not None:
            yield entry


def _tail(entries: Iterable[LogEntry], tail: int | None) -> list[LogEntry]:
    if tail is None:
        return list(entries)
    if tail <= 0:
        return []
    return list(deque(entries, maxlen=tail))


def read_entries(path: Path, tail: int | None = None) -> list[LogEntry]:
    """All records (or the last ``tail``) of the log at ``path``. Blocking."""

    def every_line() -> Iterable[bytes]:
        for file in all_files(path):
            try:
                with open(file, "rb") as handle:
                    yield from handle
            except FileNotFoundError:
                continue  # rotated away between listing and opening

    return _tail(_entries(every_line()), tail)


async def read_logs(path: Path, tail: int | None = None, timestamps: bool = False
                    ) -> list[str]:
    entries = await asyncio.to_thread(read_entries, path, tail)
    return [e.format(timestamps) for e in entries]


class _Follower:
    """Reads complete lines from the live file and switches to the new file when the
    writer rotates (the old handle is drained first, so nothing is lost)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.handle: BinaryIO | None = None
        self.inode: int | None = None
        self.pending = b""

    def open_current(self) -> bool:
        try:
            self.handle = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        except FileNotFoundError:
            return False
        self.inode = os.fstat(self.handle.fileno()).st_ino
        self.pending = b""
        return True

    def initial(self, tail: int | None) -> list[LogEntry]:
        """What is there now: rotated files plus the live file, read through our handle
        (skipping a rotated file that *is* our handle, should rotation race us)."""

        def lines() -> Iterable[bytes]:
            for file in rotated_files(self.path):
                try:
                    with open(file, "rb") as handle:
                        if os.fstat(handle.fileno()).st_ino == self.inode:
                            continue
                        yield from handle
                except FileNotFoundError:
                    continue
            yield from self.read_new()

        return _tail(_entries(lines()), tail)

    def read_new(self) -> list[bytes]:
        if self.handle is None and not self.open_current():
            return []
        assert self.handle is not None
        data = self.pending + self.handle.read()
        *complete, self.pending = data.split(b"\n")
        return [line + b"\n" for line in complete]

    def rotated(self) -> bool:
        try:
            return os.stat(self.path).st_ino != self.inode
        except FileNotFoundError:
            return False

    def poll(self) -> list[LogEntry]:
        lines = self.read_new()
        if self.handle is not None and self.rotated():
            lines += self.read_new()  # what was written before the rename
            old_inode = self.inode
            self.close()
            lines += self._rotated_since(old_inode)
            if self.open_current():
                lines += self.read_new()
        return list(_entries(lines))

    def _rotated_since(self, inode: int | None) -> list[bytes]:
        """Files rotated after ours, when the writer rotated more than once between two
        polls: those newer than our file, or all of them if ours is gone already."""
        files = []
        for file in rotated_files(self.path):
            try:
                handle = open(file, "rb")  # noqa: SIM115 - closed below
            except FileNotFoundError:
                continue
            files.append((os.fstat(handle.fileno()).st_ino, handle))
        inodes = [ino for ino, _handle in files]
        start = inodes.index(inode) + 1 if inode in inodes else 0
        lines: list[bytes] = []
        for index, (_ino, handle) in enumerate(files):
            with handle:
                if index >= start:
                    lines.extend(handle.readlines())
        return lines

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


async def follow(path: Path, tail: int | None = None, timestamps: bool = False,
                 interval: float = FOLLOW_INTERVAL, exit_path: Path | None = None
                 ) -> AsyncIterator[str]:
    """Yield the existing lines (or the last ``tail``), then new ones as they are written,
    until cancelled, or, with ``exit_path``, until the container's exit record exists and
    everything written before it has been yielded."""
    follower = _Follower(path)
    try:
        await asyncio.to_thread(follower.open_current)
        for entry in await asyncio.to_thread(follower.initial, tail):
            yield entry.format(timestamps)
        def step() -> tuple[list[LogEntry], bool]:
            # Look for the exit record first: the shim writes it after the last line, so
            # once it is seen, this poll is the last one needed.
            finished = exit_path is not None and Path(exit_path).exists()
            return follower.poll(), finished

        while True:
            entries, finished = await asyncio.to_thread(step)
            for entry in entries:
                yield entry.format(timestamps)
            if finished:
                return
            await asyncio.sleep(interval)
    finally:
        follower.close()
