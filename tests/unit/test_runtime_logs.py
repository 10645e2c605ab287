"""The json-file log: writing with rotation, reading in order, tail, follow."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.runtime.logfile import MAX_LINE, LogEntry, LogWriter, all_files
from agent.runtime.logs import follow, read_entries, read_logs
from agent.runtime.records import rfc3339_nano
from agent.runtime.shim import pump


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_rfc3339_nano() -> None:
    assert rfc3339_nano(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert rfc3339_nano(5) == "1970-01-01T00:00:00.000000005Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", rfc3339_nano())


def test_record_format_is_dockers(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "c.log")
    writer.write("stdout", "héllo\n", time_ns=0)
    writer.close()
    assert json.loads((tmp_path / "c.log").read_text()) == {
        "log": "héllo\n", "stream": "stdout", "time": "1970-01-01T00:00:00.000000000Z"}


def write_lines(path: Path, count: int, max_size: int, max_files: int) -> None:
    writer = LogWriter(path, max_size, max_files)
    for i in range(count):
        writer.write("stdout" if i % 2 else "stderr", f"line {i}\n")
    writer.close()


def test_rotation_keeps_max_files_each_under_max_size(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    write_lines(log, 300, max_size=1000, max_files=3)
    assert [p.name for p in all_files(log)] == ["c.log.2", "c.log.1", "c.log"]
    assert all(p.stat().st_size <= 1000 for p in all_files(log))
    numbers = [int(e.text.split()[1]) for e in read_entries(log)]
    assert numbers == list(range(numbers[0], 300))  # contiguous, oldest first
    assert [e.text for e in read_entries(log, tail=2)] == ["line 298", "line 299"]
    assert read_entries(log, tail=0) == []


def test_one_file_truncates(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    write_lines(log, 100, max_size=500, max_files=1)
    assert [p.name for p in all_files(log)] == ["c.log"]
    assert read_entries(log)[-1].text == "line 99"


def test_a_smaller_max_files_drops_old_rotations(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    write_lines(log, 300, max_size=1000, max_files=5)
    write_lines(log, 300, max_size=1000, max_files=2)
    assert [p.name for p in all_files(log)] == ["c.log.1", "c.log"]


def test_long_lines_are_cut(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "c.log")
    writer.write("stdout", "x" * (MAX_LINE * 2 + 5) + "\n")
    writer.close()
    entries = read_entries(tmp_path / "c.log")
    assert [len(e.log) for e in entries] == [MAX_LINE, MAX_LINE, 6]
    assert "".join(e.log for e in entries) == "x" * (MAX_LINE * 2 + 5) + "\n"


async def test_read_logs_with_timestamps_and_torn_lines(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    log.write_bytes(LogEntry("T1", "stdout", "a\n").to_line() + b'{"torn": \n' +
                    LogEntry("T2", "stderr", "b").to_line())
    assert await read_logs(log) == ["a", "b"]
    assert await read_logs(log, tail=1, timestamps=True) == ["T2 b"]
    assert await read_logs(tmp_path / "missing.log") == []


async def test_pump_splits_lines_and_keeps_partial_output(tmp_path: Path) -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b"one\ntw")
    reader.feed_data(b"o\n" + b"y" * (MAX_LINE + 3) + b"\nbad \xff byte\nlast")
    reader.feed_eof()
    writer = LogWriter(tmp_path / "c.log")
    await pump(reader, "stderr", writer)
    writer.close()
    entries = read_entries(tmp_path / "c.log")
    assert [e.log for e in entries] == [
        "one\n", "two\n", "y" * MAX_LINE, "yyy\n", "bad \ufffd byte\n", "last"]
    assert {e.stream for e in entries} == {"stderr"}


async def test_follow_survives_rotation_and_stops_at_exit(tmp_path: Path) -> None:
    log, exit_path = tmp_path / "c.log", tmp_path / "exit.json"
    writer = LogWriter(log, max_size=300, max_files=3)
    for i in range(3):
        writer.write("stdout", f"old {i}\n")
    writer.flush()
    seen: list[str] = []
    caught_up = asyncio.Event()

    async def consume() -> None:
        async for line in follow(log, tail=2, interval=0.01, exit_path=exit_path):
            seen.append(line)
            if len(seen) == 2:
                caught_up.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(caught_up.wait(), 10)
    for batch in range(10):
        # Six lines are about 1.5 rotations: the follower must find the file it was
        # reading renamed, and sometimes another one rotated after it.
        for i in range(batch * 6, batch * 6 + 6):
            writer.write("stdout", f"new {i}\n")
            writer.flush()
        await wait_until(lambda n=batch * 6 + 8: len(seen) >= n)
    writer.close()
    exit_path.write_text("{}")
    await asyncio.wait_for(task, 10)
    assert seen == ["old 1", "old 2"] + [f"new {i}" for i in range(60)]
    assert len(all_files(log)) == 3


async def test_follow_waits_for_the_file_and_can_be_cancelled(tmp_path: Path) -> None:
    log = tmp_path / "later.log"
    seen: list[str] = []

    async def consume() -> None:
        async for line in follow(log, interval=0.01):
            seen.append(line)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    writer = LogWriter(log)
    writer.write("stdout", "hello\n")
    writer.close()
    await wait_until(lambda: bool(seen))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["hello"]
