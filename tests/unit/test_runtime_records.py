"""Exit records, pid liveness, runc's error messages and the host's cgroup mounts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from agent.runtime.cgroups import memory_dir, parse_mountinfo
from agent.runtime.host import capabilities_from_mask, own_capabilities
from agent.runtime.records import ExitRecord, pid_alive, read_exit, write_exit
from agent.runtime.runc import runc_message
from agent.runtime.spec import DEFAULT_CAPABILITIES

MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 23 0:40 / /mnt/with\\040space rw - cgroup cgroup rw,pids
"""


def test_exit_record_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "exit.json"
    assert read_exit(path) is None
    record = ExitRecord(137, True, "2024-01-01T00:00:00.000000000Z", pid=42)
    write_exit(path, record)
    assert read_exit(path) == record
    assert not [p for p in tmp_path.iterdir() if p.name != "exit.json"]  # no temp left
    path.write_text("{not json")
    assert read_exit(path) is None


def test_pid_alive_treats_zombies_as_dead() -> None:
    assert pid_alive(os.getpid(), "python") or pid_alive(os.getpid())
    assert not pid_alive(None) and not pid_alive(0)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    # Wait for it to exit without reaping it: it is a zombie now.
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    assert not pid_alive(child.pid)
    child.wait()
    assert not pid_alive(os.getpid(), "no-such-program-name")


def test_runc_messages() -> None:
    assert runc_message('time="2024-01-01T00:00:00Z" level=error msg="container does '
                        'not exist"\n') == "container does not exist"
    assert runc_message('time="x" level=error msg="exec: \\"nope\\": not found"') == \
        'exec: "nope": not found'
    assert runc_message('{"level":"error","msg":"boom","time":"x"}') == "boom"
    assert runc_message("plain text\n") == "plain text"
    assert runc_message("") == "(no message)"


def test_mountinfo_parsing() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert [(str(m.path), m.version, sorted(m.controllers)) for m in mounts] == [
        ("/sys/fs/cgroup/cpu", 1, ["cpu"]),
        ("/sys/fs/cgroup/memory", 1, ["memory"]),
        ("/sys/fs/cgroup/systemd", 1, ["name=systemd"]),
        ("/sys/fs/cgroup/unified", 2, []),
        ("/mnt/with space", 1, ["pids"]),
    ]
    assert memory_dir("/skiff/n1/c1", mounts) == Path("/sys/fs/cgroup/memory/skiff/n1/c1")
    assert memory_dir("/x", parse_mountinfo("")) is None


def test_capabilities_from_status() -> None:
    assert capabilities_from_mask(0xA80425FB) == DEFAULT_CAPABILITIES
    status = "Name:\tx\nCapPrm:\t00000000a80425fb\nCapBnd:\t00000000a80405fb\n"
    assert own_capabilities(status) == DEFAULT_CAPABILITIES - {"NET_RAW"}
