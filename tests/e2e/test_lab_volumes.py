"""Named volumes and bind mounts on the lab: data outlives its app, co-located replicas
share a volume, a read-only mount refuses writes, a host edit shows up live through a
bind mount, and an agent restart keeps a volume's folder and creation time."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Lab, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(400)]


def _running(lab: Lab, app: str, n: int) -> list[dict[str, Any]] | None:
    tasks = [t for t in lab.tasks(app) if t["status"]["state"] == "running"
             and t["spec"]["desiredState"] == "running"]
    return tasks if len(tasks) == n else None


def _task(tasks: list[dict[str, Any]], service: str) -> dict[str, Any]:
    return next(t for t in tasks if t["spec"]["service"] == service)


def _exec(lab: Lab, app: str, task: dict[str, Any], *argv: str,
          check: bool = True) -> Any:
    return lab.skiff("exec", f"{app}/{task['metadata']['name']}", "--", *argv, check=check)


def _inspect(lab: Lab, name: str) -> dict[str, Any]:
    return json.loads(lab.skiff("volume", "inspect", name).stdout)[0]


NOTES = """\
name: notes
services:
  writer:
    image: busybox
    command: ["sh", "-c", "echo record-from-$$HOSTNAME >> /data/log.txt; sleep 3600"]
    stop_signal: SIGKILL
    volumes:
      - notes:/data
  reader:
    image: busybox
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    volumes:
      - type: volume
        source: notes
        target: /data
        read_only: true
volumes:
  notes:
"""


def test_a_record_survives_delete_and_apply_and_services_share_a_volume(lab: Lab) -> None:
    try:
        lab.apply(NOTES)
        tasks = wait_for(lambda: _running(lab, "notes", 2), "writer and reader running",
                         timeout=120)
        writer, reader = _task(tasks, "writer"), _task(tasks, "reader")
        # One local volume: both replicas on its node.
        assert writer["spec"]["nodeName"] == reader["spec"]["nodeName"]
        volume = _inspect(lab, "notes_notes")
        assert volume["Node"] == writer["spec"]["nodeName"] and volume["Scope"] == "local"

        first = wait_for(lambda: _exec(lab, "notes", reader, "cat", "/data/log.txt")
                         .stdout.strip() or None, "the writer's first record")
        _exec(lab, "notes", writer, "sh", "-c", "echo shared-write > /data/shared.txt")
        assert _exec(lab, "notes", reader, "cat", "/data/shared.txt").stdout == \
            "shared-write\n"
        refused = _exec(lab, "notes", reader, "sh", "-c", "echo no > /data/nope",
                        check=False)
        assert refused.returncode != 0 and "Read-only file system" in refused.stderr

        gone = lab.skiff("volume", "rm", "notes_notes", check=False)
        assert gone.returncode == 1 and "in use by service notes/reader" in gone.stderr

        lab.skiff("delete", "app", "notes")
        assert _inspect(lab, "notes_notes")["Mountpoint"] == volume["Mountpoint"]
        lab.apply(NOTES)
        tasks = wait_for(lambda: _running(lab, "notes", 2), "the app back", timeout=120)
        log = _exec(lab, "notes", _task(tasks, "reader"), "cat", "/data/log.txt").stdout
        assert log.splitlines()[0] == first.splitlines()[0]
        assert len(log.splitlines()) == 2  # the new writer added its own

        lab.skiff("delete", "app", "notes", "--volumes")
        assert "notes_notes" not in lab.skiff("volume", "ls", "-q").stdout.split()
        assert not Path(volume["Mountpoint"]).exists()
    finally:
        lab.skiff("delete", "app", "notes", "--ignore-not-found", check=False)
        lab.skiff("volume", "rm", "--force", "notes_notes", check=False)


def test_a_host_edit_is_seen_live_through_a_bind_mount(lab: Lab) -> None:
    src = Path(tempfile.mkdtemp(prefix="skiff-e2e-bind-"))
    try:
        (src / "index.html").write_text("version 1\n")
        lab.apply(f"""\
name: devloop
services:
  web:
    image: busybox
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    volumes:
      - {src}:/app
      - type: bind
        source: {src}
        target: /readonly
        read_only: true
""")
        task = wait_for(lambda: _running(lab, "devloop", 1), "devloop running",
                        timeout=120)[0]
        assert _exec(lab, "devloop", task, "cat", "/app/index.html").stdout == "version 1\n"
        (src / "index.html").write_text("version 2\n")
        assert _exec(lab, "devloop", task, "cat", "/app/index.html").stdout == "version 2\n"
        _exec(lab, "devloop", task, "sh", "-c", "echo from-inside > /app/out.txt")
        assert (src / "out.txt").read_text() == "from-inside\n"
        refused = _exec(lab, "devloop", task, "sh", "-c", "echo x > /readonly/y",
                        check=False)
        assert refused.returncode != 0 and not (src / "y").exists()
        same = _running(lab, "devloop", 1)
        assert same is not None and same[0]["metadata"]["name"] == task["metadata"]["name"]
        assert same[0]["status"].get("restarts", 0) == 0
        assert same[0]["status"]["startedAt"] == task["status"]["startedAt"]
    finally:
        lab.skiff("delete", "app", "devloop", "--ignore-not-found", check=False)
        shutil.rmtree(src, ignore_errors=True)


def test_an_agent_restart_keeps_the_volume_s_mountpoint_and_creation_time(lab: Lab) -> None:
    try:
        lab.skiff("volume", "create", "--node", lab.node(3), "--label", "tier=db", "kept")
        made = wait_for(lambda: (v := _inspect(lab, "kept"))["Mountpoint"] and v,
                        "node 3 to make the volume")
        assert made["Node"] == lab.node(3) and made["Labels"] == {"tier": "db"}
        assert Path(made["Mountpoint"]).is_dir()
        (Path(made["Mountpoint"]) / "data.txt").write_text("kept\n")

        lab.lab("node", "stop", "3")
        lab.lab("node", "start", "3")
        after = _inspect(lab, "kept")
        assert (after["Mountpoint"], after["CreatedAt"]) == \
            (made["Mountpoint"], made["CreatedAt"])
        assert (Path(after["Mountpoint"]) / "data.txt").read_text() == "kept\n"

        lab.skiff("volume", "rm", "kept")
        assert not Path(made["Mountpoint"]).exists()
    finally:
        lab.skiff("volume", "rm", "--force", "kept", check=False)


def test_bad_bind_sources_fail_the_task_and_nocopy_keeps_a_volume_empty(lab: Lab) -> None:
    missing = f"/tmp/skiff-e2e-missing-{lab.name}"
    try:
        lab.apply(f"""\
name: badbind
services:
  missing:
    image: busybox
    command: ["sleep", "3600"]
    volumes:
      - type: bind
        source: {missing}
        target: /data
  device:
    image: busybox
    command: ["sleep", "3600"]
    volumes:
      - type: bind
        source: /dev/null
        target: /data
  empty:
    image: busybox
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    volumes:
      - type: volume
        source: etc
        target: /etc
        volume:
          nocopy: true
  filled:
    image: busybox
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    volumes:
      - filled:/etc
volumes:
  etc:
  filled:
""")

        def failed(service: str) -> str | None:
            for t in lab.tasks("badbind"):
                if t["spec"]["service"] == service and t["status"]["state"] == "failed":
                    return str(t["status"]["message"])
            return None
        assert "does not exist on node" in wait_for(lambda: failed("missing"),
                                                    "the missing bind to fail")
        assert "/dev/null is a device" in wait_for(lambda: failed("device"),
                                                   "the device bind to fail")
        assert not Path(missing).exists()

        def running(service: str) -> dict[str, Any] | None:
            return next((t for t in lab.tasks("badbind") if t["spec"]["service"] == service
                         and t["status"]["state"] == "running"), None)
        empty = wait_for(lambda: running("empty"), "the nocopy service running")
        assert _exec(lab, "badbind", empty, "ls", "-A", "/etc").stdout == ""
        filled = wait_for(lambda: running("filled"), "the filled service running")
        assert "passwd" in _exec(lab, "badbind", filled, "ls", "/etc").stdout.split()
    finally:
        lab.skiff("delete", "app", "badbind", "--volumes", "--ignore-not-found", check=False)
