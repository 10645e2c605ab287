"""The per-container supervisor: ``python -m agent.runtime.shim --id ID ...``.

The agent starts one shim per container in a new session, so the shim (and the container)
outlive an agent restart or a ``kill -9`` of the agent. The shim runs ``runc run`` in the
foreground: runc's exit status *is* the container's (128+N when a signal killed it), and
runc removes the container and its cgroups when it exits. Meanwhile the shim:

- copies the container's stdout and stderr into the json-file log (logfile.py), rotating it;
- watches the container's memory cgroup for OOM kills (cgroups.OomWatcher);
- forwards SIGTERM/SIGINT as the container's stop signal (runc relays it to PID 1);
- writes the exit record atomically when runc is done (records.py) and then exits.

The shim's own stdout/stderr go to a file of the agent's choosing (its diagnostics only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

from agent.runtime import cgroups
from agent.runtime.logfile import DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE, MAX_LINE, LogWriter
from agent.runtime.records import (
    ExitRecord,
    read_pid,
    rfc3339_nano,
    write_atomic,
    write_exit,
)
from agent.runtime.request import signal_number

READ_CHUNK = 64 * 1024
# After runc exits, output still in the pipes is copied for at most this long (a process
# outside the container's pid namespace could hold a pipe open forever).
DRAIN_TIMEOUT = 5.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m agent.runtime.shim",
                                     description="Supervise one runc container.")
    parser.add_argument("--id", required=True, help="runc container id")
    parser.add_argument("--bundle", required=True, type=Path, help="OCI bundle directory")
    parser.add_argument("--root", required=True, type=Path, help="runc --root (per node)")
    parser.add_argument("--runc", default="runc", help="runc binary")
    parser.add_argument("--log", required=True, type=Path, help="container log (json-file)")
    parser.add_argument("--log-max-size", type=int, default=DEFAULT_MAX_SIZE)
    parser.add_argument("--log-max-files", type=int, default=DEFAULT_MAX_FILES)
    parser.add_argument("--exit-file", required=True, type=Path, help="exit record to write")
    parser.add_argument("--pid-file", required=True, type=Path, help="the shim's own pid")
    parser.add_argument("--init-pid-file", required=True, type=Path,
                        help="where runc writes the container's init pid")
    parser.add_argument("--runc-log", required=True, type=Path, help="runc's JSON log")
    parser.add_argument("--cgroup-path", default=None,
                        help="the container's cgroupsPath, to watch for OOM kills")
    parser.add_argument("--stop-signal", default="SIGTERM")
    return parser.parse_args(argv)


def runc_error(runc_log: Path) -> str | None:
    """The last error runc logged (why the container could not start), if any."""
    message = None
    with contextlib.suppress(OSError):
        for line in runc_log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError, AttributeError):
                entry = json.loads(line)
                if entry.get("level") in ("error", "fatal"):
                    message = str(entry.get("msg", ""))
    return message


async def pump(reader: asyncio.StreamReader, stream: str, writer: LogWriter) -> None:
    """Copy one pipe into the log, one record per line (long lines cut at MAX_LINE)."""
    buffer = b""
    failed = False
    while chunk := await reader.read(READ_CHUNK):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        records = [line.decode(errors="replace") + "\n" for line in lines]
        while len(buffer) >= MAX_LINE:  # a record without newline: more of it follows
            records.append(buffer[:MAX_LINE].decode(errors="replace"))
            buffer = buffer[MAX_LINE:]
        try:
            for record in records:
                writer.write(stream, record)
            writer.flush()
        except OSError as exc:
            # A full disk must not kill the container's supervisor: drop output, go on.
            if not failed:
                print(f"shim: cannot write log: {exc}", file=sys.stderr, flush=True)
            failed = True
    if buffer:
        with contextlib.suppress(OSError):
            writer.write(stream, buffer.decode(errors="replace"))
            writer.flush()


def _exit_code(returncode: int) -> int:
    # runc reports a signalled container as 128+N itself; a negative code means runc
    # itself was killed by a signal.
    return 128 - returncode if returncode < 0 else returncode


async def supervise(args: argparse.Namespace) -> int:
    stop_signal = signal_number(args.stop_signal)
    loop = asyncio.get_running_loop()
    proc: asyncio.subprocess.Process | None = None
    stop_requested = False

    def forward(_signum: int) -> None:
        nonlocal stop_requested
        stop_requested = True  # a stop before runc runs is delivered once it does
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, stop_signal)  # runc relays it to the container

    # Before the pid file exists: whoever reads it may signal us at once.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, forward, signum)
    write_atomic(args.pid_file, f"{os.getpid()}\n".encode())
    writer = LogWriter(args.log, args.log_max_size, args.log_max_files)

    oom: cgroups.OomWatcher | None = None
    memory = cgroups.memory_dir(args.cgroup_path) if args.cgroup_path else None
    if memory is not None:
        try:
            oom = cgroups.OomWatcher(memory)
            loop.add_reader(oom.fileno(), oom.on_readable)
        except OSError as exc:
            print(f"shim: no OOM notification for {memory}: {exc}", file=sys.stderr,
                  flush=True)
            oom = None

    for stale in (args.init_pid_file, args.runc_log):
        stale.unlink(missing_ok=True)
    argv = [args.runc, "--root", str(args.root), "--log", str(args.runc_log),
            "--log-format", "json", "run", "--bundle", str(args.bundle),
            "--pid-file", str(args.init_pid_file), args.id]
    exit_code, error = 127, None
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        proc, error = None, f"cannot run {args.runc}: {exc}"

    if proc is not None:
        if stop_requested:
            forward(stop_signal)
        assert proc.stdout is not None and proc.stderr is not None
        pumps = asyncio.gather(pump(proc.stdout, "stdout", writer),
                               pump(proc.stderr, "stderr", writer))
        exit_code = _exit_code(await proc.wait())
        try:
            await asyncio.wait_for(pumps, DRAIN_TIMEOUT)
        except TimeoutError:
            print("shim: output pipes still open after runc exited; stopped copying",
                  file=sys.stderr, flush=True)
        error = runc_error(args.runc_log)

    writer.close()
    oom_killed = False
    if oom is not None:
        loop.remove_reader(oom.fileno())
        oom_killed = await asyncio.to_thread(oom.finish, exit_code == 137)
    started_ns = None
    with contextlib.suppress(OSError):
        started_ns = args.init_pid_file.stat().st_mtime_ns
    record = ExitRecord(
        exit_code=exit_code, oom_killed=oom_killed, finished_at=rfc3339_nano(),
        started_at=rfc3339_nano(started_ns) if started_ns else None,
        pid=read_pid(args.init_pid_file), error=error)
    write_exit(args.exit_file, record)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # No controlling terminal, but a hang-up from a dying session must not kill us.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return asyncio.run(supervise(args))


if __name__ == "__main__":
    sys.exit(main())
