"""The container log file: Docker's json-file format with size-based rotation.

One JSON object per line: ``{"log": "hello\\n", "stream": "stdout", "time": "...Z"}``.
``log`` keeps the trailing newline when the container wrote one, so concatenating the
``log`` fields gives back the exact output; a line longer than ``MAX_LINE`` is cut into
several records, the first ones without a newline (Docker does the same at 16 KiB).
Rotation keeps ``max_files`` files in all: ``container.log``, ``container.log.1`` (older),
``container.log.2`` (oldest), ...
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from agent.runtime.records import rfc3339_nano

DEFAULT_MAX_SIZE = 10 * 1024 * 1024
DEFAULT_MAX_FILES = 3
MAX_LINE = 16 * 1024


@dataclass(frozen=True)
class LogEntry:
    time: str
    stream: str
    log: str

    @property
    def text(self) -> str:
        """The line without its newline."""
        return self.log[:-1] if self.log.endswith("\n") else self.log

    def format(self, timestamps: bool = False) -> str:
        return f"{self.time} {self.text}" if timestamps else self.text

    def to_line(self) -> bytes:
        return (json.dumps({"log": self.log, "stream": self.stream, "time": self.time},
                           ensure_ascii=False) + "\n").encode()

    @classmethod
    def parse(cls, line: bytes | str) -> LogEntry | None:
        try:
            data = json.loads(line)
            return cls(str(data["time"]), str(data["stream"]), str(data["log"]))
        except (ValueError, KeyError, TypeError):
            return None  # a torn or foreign line is skipped, not fatal to the reader


def rotated_files(path: Path) -> list[Path]:
    """``path``'s rotated files, oldest first (``.3``, ``.2``, ``.1``)."""
    path = Path(path)
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)")
    found = []
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return []
    for name in names:
        match = pattern.fullmatch(name)
        if match:
            found.append((int(match.group(1)), path.parent / name))
    return [p for _n, p in sorted(found, reverse=True)]


def all_files(path: Path) -> list[Path]:
    """Every file of the log, oldest first, the live one last (if it exists)."""
    files = rotated_files(path)
    return [*files, Path(path)] if Path(path).exists() else files


class LogWriter:
    """Appends records to the log, rotating by size. Not thread-safe (the shim owns it)."""

    def __init__(self, path: Path, max_size: int = DEFAULT_MAX_SIZE,
                 max_files: int = DEFAULT_MAX_FILES) -> None:
        if max_size <= 0 or max_files <= 0:
            raise ValueError("log max size and max files must be positive")
        self.path = Path(path)
        self.max_size = max_size
        self.max_files = max_files
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")  # noqa: SIM115 - lives as long as the writer
        self._size = self._file.tell()

    def write(self, stream: str, text: str, time_ns: int | None = None) -> None:
        # Cut long lines so that a reader never holds more than MAX_LINE of one record.
        stamp = rfc3339_nano(time_ns)
        for start in range(0, max(len(text), 1), MAX_LINE):
            data = LogEntry(stamp, stream, text[start:start + MAX_LINE]).to_line()
            if self._size > 0 and self._size + len(data) > self.max_size:
                self._rotate()
            self._file.write(data)
            self._size += len(data)

    def flush(self) -> None:
        self._file.flush()

    def _rotate(self) -> None:
        self._file.flush()
        self._file.close()
        if self.max_files == 1:
            self._file = open(self.path, "wb")  # noqa: SIM115 - one file: truncate it
            self._size = 0
            return
        for old in rotated_files(self.path):
            number = int(old.name.rsplit(".", 1)[1])
            if number >= self.max_files - 1:
                old.unlink(missing_ok=True)
        for number in range(self.max_files - 2, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{number}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{number + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._file = open(self.path, "ab")  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            self._file.close()
