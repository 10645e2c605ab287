"""Run the real `skiff` command from async tests without blocking the event loop
(the controller under test may be serving in that same loop)."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

SKIFF = str(Path(sys.executable).with_name("skiff"))


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


async def skiff(*args: str, env: dict[str, str] | None = None, stdin: str | None = None,
                timeout: float = 60) -> Result:
    proc = await asyncio.create_subprocess_exec(
        SKIFF, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})})
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(stdin.encode() if stdin is not None else None), timeout)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())
