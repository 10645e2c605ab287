"""Limits, stop, exec, remove, and a shim that outlives whoever started it."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import sys
import time
from pathlib import Path

import pytest

from agent.runtime import cgroups
from agent.runtime.container import ContainerState, ContainerStatus, Runtime
from agent.runtime.logs import follow, read_logs
from agent.runtime.records import pid_alive, read_exit, read_pid
from agent.runtime.runc import ContainerNotFound, ContainerNotRunning, RuncTimeout
from agent.runtime.spec import CFS_PERIOD_US

from .conftest import RuntimeEnv, wait_for

pytestmark = pytest.mark.integration
MiB = 1024 * 1024
REPO = Path(__file__).resolve().parents[3]


async def wait_stopped(env: RuntimeEnv, cid: str, timeout: float = 15.0) -> ContainerStatus:
    async def stopped() -> ContainerStatus | None:
        st = await env.runtime.status(cid)
        return st if st.state is ContainerState.STOPPED else None

    return await wait_for(stopped, f"{cid} to stop", timeout)


async def test_memory_limit_oom_kills_with_137(env: RuntimeEnv) -> None:
    # awk doubles a string until the 32 MiB limit (memory+swap) is hit.
    req = env.request(["awk", 'BEGIN { s = "x"; while (1) s = s s }'],
                      memory_limit=32 * MiB)
    await env.start(req)
    status = await wait_stopped(env, req.id)
    assert (status.exit_code, status.oom_killed) == (137, True)


async def test_sigkill_without_oom_is_not_reported_as_oom(env: RuntimeEnv) -> None:
    req = env.request(["sleep", "1000"], memory_limit=32 * MiB)
    await env.start(req)
    status = await env.runtime.stop(req.id, "SIGKILL", grace_seconds=5)
    assert (status.exit_code, status.oom_killed) == (137, False)


async def test_limits_reach_the_cgroup(env: RuntimeEnv) -> None:
    req = env.request(["sleep", "1000"], memory_limit=64 * MiB, cpus=0.5, pids_limit=16)
    await env.start(req)
    memory = cgroups.controller_dir("memory", req.cgroup_path)
    cpu = cgroups.controller_dir("cpu", req.cgroup_path)
    pids = cgroups.controller_dir("pids", req.cgroup_path)
    assert memory and cpu and pids
    assert int((memory / "memory.limit_in_bytes").read_text()) == 64 * MiB
    assert int((memory / "memory.memsw.limit_in_bytes").read_text()) == 64 * MiB
    assert int((cpu / "cpu.cfs_quota_us").read_text()) == CFS_PERIOD_US // 2
    assert (pids / "pids.max").read_text().strip() == "16"
    stats = await env.runtime.runc.stats(req.id)
    assert stats["memory"]["usage"]["limit"] == 64 * MiB
    assert stats["pids"]["limit"] == 16 and stats["pids"]["current"] >= 1


async def test_pids_limit_stops_forks(env: RuntimeEnv) -> None:
    req = env.request(["sleep", "1000"], pids_limit=8)
    await env.start(req)
    result = await env.runtime.exec(
        req.id, ["sh", "-c", "for i in $(seq 1 20); do sleep 100 >/dev/null 2>&1 & done"],
        timeout=20)
    assert "can't fork" in result.stderr
    pids = cgroups.controller_dir("pids", req.cgroup_path)
    assert pids is not None
    assert int((pids / "pids.current").read_text()) <= 8


async def test_stop_kills_after_the_grace_period(env: RuntimeEnv) -> None:
    # PID 1 has no handler for SIGTERM, so the kernel ignores it: only SIGKILL works.
    req = env.request(["sleep", "1000"])
    await env.start(req)
    started = time.monotonic()
    status = await env.runtime.stop(req.id, grace_seconds=1.0)
    assert status.state is ContainerState.STOPPED and status.exit_code == 137
    assert not status.oom_killed and status.error is None
    assert time.monotonic() - started >= 1.0
    # Idempotent: stopping again changes nothing.
    assert (await env.runtime.stop(req.id, grace_seconds=1.0)).exit_code == 137


async def test_stop_signal_handled_gives_the_exit_code(env: RuntimeEnv) -> None:
    req = env.request(["sh", "-c", "trap 'echo bye; exit 42' TERM; sleep 1000 & wait"])
    await env.start(req)
    started = time.monotonic()
    status = await env.runtime.stop(req.id, grace_seconds=20)
    assert status.exit_code == 42 and time.monotonic() - started < 10
    assert (await read_logs(env.log_path(req.id)))[-1] == "bye"


async def test_custom_stop_signal(env: RuntimeEnv) -> None:
    req = env.request(["sh", "-c", "trap 'exit 7' USR1; sleep 1000 & wait"],
                      stop_signal="SIGUSR1")
    await env.start(req)
    assert (await env.runtime.stop(req.id, grace_seconds=20)).exit_code == 7


async def test_exec(env: RuntimeEnv) -> None:
    req = env.request(["sleep", "1000"], env={"GREETING": "hi"})
    await env.start(req)
    code, out, err = await env.runtime.exec(
        req.id, ["sh", "-c", "echo $GREETING $EXTRA; echo oops >&2; exit 5"],
        env={"EXTRA": "there"}, timeout=10)
    assert (code, out, err) == (5, "hi there\n", "oops\n")
    with pytest.raises(RuncTimeout):
        await env.runtime.exec(req.id, ["sleep", "77"], timeout=0.5)
    # The timed-out process was killed inside the container, not just runc.
    result = await env.runtime.exec(req.id, ["ps", "-o", "args"], timeout=10)
    assert "sleep 77" not in result.stdout
    await env.runtime.stop(req.id, "SIGKILL")
    with pytest.raises((ContainerNotRunning, ContainerNotFound)):
        await env.runtime.exec(req.id, ["true"], timeout=10)


async def test_remove_leaves_nothing_behind(env: RuntimeEnv) -> None:
    rt = env.runtime
    req = env.request(["sleep", "1000"], memory_limit=64 * MiB, pids_limit=32)
    pid = await env.start(req)
    shim_pid = read_pid(env.base / "state" / req.id / "shim.pid")
    assert pid_alive(pid) and pid_alive(shim_pid)
    assert cgroups.existing_dirs(req.cgroup_path)
    await rt.remove(req.id)
    record = read_exit(env.exit_path(req.id))  # the shim saw the kill and recorded it
    assert record is not None and record.exit_code == 137 and record.error is None
    assert await rt.runc.state(req.id) is None
    assert cgroups.existing_dirs(req.cgroup_path) == []
    assert not req.bundle_dir.exists() and not (env.base / "state" / req.id).exists()
    assert not pid_alive(pid) and not pid_alive(shim_pid)
    assert req.rootfs.exists()  # the image's rootfs is not the runtime's to delete
    assert (await rt.status(req.id)).state is ContainerState.MISSING
    assert await rt.list_ids() == []
    # Post-run is safe without pre-run, and safe twice.
    await rt.remove(req.id)
    await rt.remove("never-existed")
    assert (await rt.stop("never-existed")).state is ContainerState.MISSING


# The "agent": starts the container, prints its own pid and the container's, then waits.
STARTER = """
import asyncio, os, pickle, sys
from agent.runtime.container import Runtime
req, log, exit_path, runc_root, state = pickle.loads(sys.stdin.buffer.read())
async def main():
    pid = await Runtime(runc_root, state).create_and_start(req, log, exit_path)
    print(os.getpid(), pid, flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""
# Its parent, a child subreaper: the orphaned shim is re-parented here (this sandbox's
# PID 1 never reaps orphans) and reaped when it exits; it exits when no child is left.
REAPER = """
import ctypes, os, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
subprocess.Popen([sys.executable, "-c", sys.argv[1]])
while True:
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        break
"""


async def test_shim_survives_the_death_of_its_starter(env: RuntimeEnv) -> None:
    req = env.request(["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); "
                                   "sleep 0.05; done"])
    reaper = await asyncio.create_subprocess_exec(
        sys.executable, "-c", REAPER, STARTER, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, cwd=str(REPO))
    assert reaper.stdin is not None and reaper.stdout is not None
    reaper.stdin.write(pickle.dumps((req, env.log_path(req.id), env.exit_path(req.id),
                                     env.base / "runc", env.base / "state")))
    reaper.stdin.close()
    try:
        line = await asyncio.wait_for(reaper.stdout.readline(), 30)
        starter_pid, pid = map(int, line.split())
        os.kill(starter_pid, signal.SIGKILL)  # the "agent" dies
        shim_pid = read_pid(env.base / "state" / req.id / "shim.pid")
        assert shim_pid and pid_alive(shim_pid)

        # A fresh Runtime (a restarted agent) adopts the container from disk and runc.
        rt = Runtime(env.base / "runc", env.base / "state")
        status = await rt.status(req.id)
        assert status.state is ContainerState.RUNNING and status.pid == pid
        before = len(await read_logs(env.log_path(req.id)))

        async def more_lines() -> bool:
            return len(await read_logs(env.log_path(req.id))) > before + 5

        await wait_for(more_lines, "the shim to keep logging")
        assert (await rt.exec(req.id, ["echo", "still here"], timeout=10)).stdout == \
            "still here\n"
        status = await rt.stop(req.id, grace_seconds=1)
        assert status.exit_code == 137
        await rt.remove(req.id)
        assert not pid_alive(shim_pid)
        # The reaper exits once the shim, its last descendant, is gone.
        assert await asyncio.wait_for(reaper.wait(), 15) == 0
    finally:
        if reaper.returncode is None:
            reaper.kill()
            await reaper.wait()


async def test_follow_streams_until_exit(env: RuntimeEnv) -> None:
    req = env.request(["sh", "-c", "for i in $(seq 1 5); do echo line $i; sleep 0.1; done"])
    await env.start(req)
    lines = []
    async with asyncio.timeout(20):
        async for line in follow(env.log_path(req.id), exit_path=env.exit_path(req.id)):
            lines.append(line)
    assert lines == [f"line {i}" for i in range(1, 6)]


async def test_log_rotation_keeps_the_newest_lines(env: RuntimeEnv) -> None:
    req = env.request(["sh", "-c", "for i in $(seq 1 400); do echo line $i; done"])
    await env.start(req, log_max_size=4096, log_max_files=3)
    await wait_stopped(env, req.id)
    log = env.log_path(req.id)
    assert sorted(p.name for p in log.parent.glob("container.log*")) == [
        "container.log", "container.log.1", "container.log.2"]
    assert all(p.stat().st_size <= 4096 for p in log.parent.glob("container.log*"))
    lines = await read_logs(log)
    numbers = [int(x.split()[1]) for x in lines]
    assert numbers[-1] == 400 and numbers == list(range(numbers[0], 401))
    assert await read_logs(log, tail=3) == ["line 398", "line 399", "line 400"]


async def test_init_reaps_orphans_and_forwards_signals(env: RuntimeEnv) -> None:
    facts = await env.runtime.host_facts()
    if facts.init_binary is None:
        pytest.skip("tini-static is not installed (apt-get install tini)")
    req = env.request(["sh", "-c", "(sleep 0.2 &); sleep 1000"], init=True)
    await env.start(req)

    async def no_zombie() -> list[list[str]] | None:
        out = (await env.runtime.exec(req.id, ["ps", "-o", "pid,stat,args"],
                                      timeout=10)).stdout
        procs = [line.split(None, 2) for line in out.splitlines()[1:]]
        orphan = [p for p in procs if p[2] == "sleep 0.2" or p[1].startswith("Z")]
        return procs if not orphan else None

    procs = await wait_for(no_zombie, "the orphan to be reaped")
    assert procs[0][0] == "1" and procs[0][2].startswith("/sbin/skiff-init -- sh -c")
    status = await env.runtime.stop(req.id, grace_seconds=20)
    assert status.exit_code == 143  # sh died of the SIGTERM that tini passed on


async def test_stop_sends_signal_to_shim_path(env: RuntimeEnv) -> None:
    """SIGTERM to the shim itself is forwarded to the container as its stop signal."""
    req = env.request(["sh", "-c", "trap 'exit 9' TERM; sleep 1000 & wait"])
    await env.start(req)
    shim_pid = read_pid(env.base / "state" / req.id / "shim.pid")
    assert shim_pid
    os.kill(shim_pid, signal.SIGTERM)
    status = await wait_stopped(env, req.id)
    assert status.exit_code == 9
