"""A container runs isolated and hardened like Docker's, and its output is logged."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agent.runtime.container import ContainerStartError, ContainerState, ContainerStatus
from agent.runtime.logs import read_logs
from agent.runtime.request import MountRequest, RequestError
from agent.runtime.spec import DEFAULT_CAPABILITIES, capability_mask

from .conftest import RuntimeEnv, wait_for

pytestmark = pytest.mark.integration

RFC3339_NANO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")


async def run_to_exit(env: RuntimeEnv, args: list[str], **kw) -> tuple[ContainerStatus,
                                                                         list[str]]:
    """Run a container to completion; its final status and its log lines."""
    req = env.request(args, **kw)
    await env.start(req)

    async def stopped() -> ContainerStatus | None:
        st = await env.runtime.status(req.id)
        return st if st.state is ContainerState.STOPPED else None

    status = await wait_for(stopped, f"{req.id} to exit")
    return status, await read_logs(env.log_path(req.id))


async def test_output_is_logged_with_timestamps(env: RuntimeEnv) -> None:
    status, lines = await run_to_exit(
        env, ["sh", "-c", "echo one; echo two; echo err >&2; printf 'no newline'; exit 3"])
    assert status.exit_code == 3 and not status.oom_killed and status.error is None
    assert RFC3339_NANO.fullmatch(status.finished_at or "")
    assert [x for x in lines if x != "err"] == ["one", "two", "no newline"]
    records = [json.loads(x) for x in
               env.log_path(status.id).read_text().splitlines()]
    assert all(RFC3339_NANO.fullmatch(r["time"]) for r in records)
    assert [r["log"] for r in records if r["stream"] == "stdout"] == [
        "one\n", "two\n", "no newline"]
    assert [r["log"] for r in records if r["stream"] == "stderr"] == ["err\n"]
    stamped = await read_logs(env.log_path(status.id), tail=1, timestamps=True)
    assert len(stamped) == 1
    stamp, _, text = stamped[0].partition(" ")
    assert RFC3339_NANO.fullmatch(stamp) and text in ("no newline", "err")


async def test_sees_only_its_own_processes_hostname_and_network(env: RuntimeEnv) -> None:
    status, lines = await run_to_exit(
        env, ["sh", "-c", "ps -o pid,args; echo host=$(hostname); ls /sys/class/net"],
        hostname="web-1")
    assert status.exit_code == 0, lines
    procs = [line.split(None, 1) for line in lines[1:] if line.strip()[:1].isdigit()]
    assert procs[0][0] == "1" and procs[0][1].startswith("sh -c ps")
    assert len(procs) <= 3, procs  # sh, ps and the $(hostname) subshell at most
    assert "host=web-1" in lines
    assert lines[-1] == "lo"  # a new, empty network namespace


def _host_has(path: str) -> bool:
    """The host's path has content, so an empty view in the container means masked."""
    p = Path(path)
    return bool(list(p.iterdir()) if p.is_dir() else p.read_bytes())


async def test_masked_and_read_only_paths(env: RuntimeEnv) -> None:
    # /proc/kcore is absent on some kernels (this one): use masked paths the host has.
    assert _host_has("/proc/timer_list") and _host_has("/sys/firmware")
    script = ("echo timer_list=$(wc -c < /proc/timer_list); "
              "echo firmware=$(ls /sys/firmware | wc -l); "
              "echo x > /proc/sys/kernel/hostname && echo procsys=rw || echo procsys=ro; "
              "touch /sys/kernel/x 2>/dev/null && echo sys=rw || echo sys=ro; "
              "grep -E '^(NoNewPrivs|CapEff|CapBnd|CapPrm|CapInh|CapAmb)' /proc/self/status")
    status, lines = await run_to_exit(env, ["sh", "-c", script])
    assert status.exit_code == 0, lines
    assert "timer_list=0" in lines and "firmware=0" in lines
    assert "procsys=ro" in lines and "sys=ro" in lines
    fields = dict(line.split(":\t") for line in lines if ":\t" in line)
    default = capability_mask(set(DEFAULT_CAPABILITIES))
    assert default == 0xA80425FB  # Docker's well-known CapEff
    assert int(fields["CapEff"], 16) == default
    assert int(fields["CapBnd"], 16) == default
    assert int(fields["CapInh"], 16) == 0 and int(fields["CapAmb"], 16) == 0
    assert fields["NoNewPrivs"] == "1"


@pytest.mark.parametrize(("kw", "expected"), [
    ({"cap_drop": ["NET_RAW"]}, 0xA80425FB & ~(1 << 13)),
    ({"cap_add": ["SYS_ADMIN"], "cap_drop": ["CHOWN"]}, (0xA80425FB | 1 << 21) & ~1),
    ({"cap_drop": ["ALL"], "cap_add": ["KILL"]}, 1 << 5),
])
async def test_cap_add_and_drop(env: RuntimeEnv, kw: dict, expected: int) -> None:
    status, lines = await run_to_exit(env, ["grep", "CapEff", "/proc/self/status"], **kw)
    assert status.exit_code == 0, lines
    assert int(lines[0].split()[1], 16) == expected


async def test_user_from_the_images_passwd(env: RuntimeEnv) -> None:
    status, lines = await run_to_exit(
        env, ["sh", "-c", "id; echo home=$HOME; grep -E '^Cap(Eff|Bnd)' /proc/self/status"],
        user="nobody")
    assert status.exit_code == 0, lines
    assert lines[0].startswith("uid=1000(nobody) gid=1000(nogroup)")
    assert "50(staff)" in lines[0]
    assert "home=/home/nobody" in lines
    caps = dict(line.split(":\t") for line in lines if ":\t" in line)
    assert int(caps["CapEff"], 16) == 0  # like Docker: non-root gets no effective caps
    assert int(caps["CapBnd"], 16) == 0xA80425FB
    with pytest.raises(RequestError, match="not found"):
        await env.start(env.request(["true"], user="nosuchuser"))


async def test_read_only_rootfs_and_mounts(env: RuntimeEnv) -> None:
    data = env.base / "hostdata"
    data.mkdir()
    (data / "hello.txt").write_text("from the host\n")
    hosts = env.base / "hosts"
    hosts.write_text("127.0.0.1 localhost\n10.0.0.5 db\n")
    mounts = [MountRequest("bind", "/data", str(data), read_only=True),
              MountRequest("tmpfs", "/scratch", size=1 << 20, mode=0o750)]
    script = ("touch /x 2>/dev/null && echo root=rw || echo root=ro; "
              "touch /scratch/y && echo scratch=rw; cat /data/hello.txt; "
              "touch /data/z 2>/dev/null && echo data=rw || echo data=ro; "
              "grep db /etc/hosts; mount | grep /scratch")
    status, lines = await run_to_exit(env, ["sh", "-c", script], read_only=True,
                                      mounts=mounts, hosts_file=hosts)
    assert status.exit_code == 0, lines
    assert lines[:5] == ["root=ro", "scratch=rw", "from the host", "data=ro",
                         "10.0.0.5 db"]
    assert "size=1024k" in lines[5] and "mode=750" in lines[5]


async def test_a_command_that_cannot_start_is_reported(env: RuntimeEnv) -> None:
    req = env.request(["/no/such/program"])
    with pytest.raises(ContainerStartError, match="no such file or directory"):
        await env.start(req)
    status = await env.runtime.status(req.id)
    assert status.state is ContainerState.STOPPED and status.error


async def test_create_and_start_is_idempotent(env: RuntimeEnv) -> None:
    req = env.request(["sleep", "1000"])
    pid = await env.start(req)
    assert await env.start(req) == pid
    assert await env.runtime.list_ids() == [req.id]
    status = await env.runtime.status(req.id)
    assert status.state is ContainerState.RUNNING and status.pid == pid


async def test_privileged(env: RuntimeEnv) -> None:
    facts = await env.runtime.host_facts()
    script = ("grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; mount | grep ' on /sys type'; "
              "echo timer_list=$(wc -c < /proc/timer_list); ls /dev | wc -l")
    status, lines = await run_to_exit(env, ["sh", "-c", script], privileged=True)
    assert status.exit_code == 0, lines
    fields = dict(line.split(":\t") for line in lines if ":\t" in line)
    assert int(fields["CapEff"], 16) == capability_mask(
        set(facts.available_capabilities or ()))
    assert fields["NoNewPrivs"] == "0"
    assert "(rw," in next(x for x in lines if " on /sys type" in x)
    assert "timer_list=0" not in lines  # nothing masked
    assert int(lines[-1]) >= len(facts.host_devices) // 2  # the host's devices are there
