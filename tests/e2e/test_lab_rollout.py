"""A rolling update on the lab, as issue 9 asks: 4 replicas behind a published port,
updated start-first one at a time while a client sends requests without pause; not one
request fails, and the service never has fewer than 3 replicas running."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import pytest

from tests.e2e.conftest import Lab, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(400)]


def _app(version: int) -> str:
    return f"""\
name: rollout
services:
  web:
    image: busybox
    environment:
      VERSION: "{version}"
    command: ["sh", "-c", "echo v$$VERSION > /tmp/i.html; exec httpd -f -p 80 -h /tmp"]
    ports: ["8091:80"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/i.html"]
      interval: 1s
      retries: 2
    deploy:
      replicas: 4
      update_config:
        parallelism: 1
        order: start-first
        monitor: 2s
"""


def _live(lab: Lab) -> list[dict[str, Any]]:
    return [t for t in lab.tasks("rollout") if t["status"]["state"] == "running"]


class Client(threading.Thread):
    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self.seen: set[str] = set()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    self.seen.add(response.read().decode().strip())
                    self.ok += 1
            except OSError as exc:
                self.failures.append(str(exc))


def test_start_first_rolling_update_loses_no_request(lab: Lab) -> None:
    client = Client(f"http://{lab.node_address(1)}:8091/i.html")
    try:
        lab.apply(_app(1))
        wait_for(lambda: len([t for t in _live(lab) if t["status"].get("health") ==
                              "healthy"]) == 4, "4 healthy replicas", timeout=120)
        client.start()
        wait_for(lambda: client.ok >= 20, "the client under way", timeout=30)
        lab.apply(_app(2))
        lowest = 4

        def updated() -> bool:
            nonlocal lowest
            tasks = lab.tasks("rollout")
            running = [t for t in tasks if t["status"]["state"] == "running"
                       and t["spec"]["desiredState"] == "running"]
            lowest = min(lowest, len(running))
            new = [t for t in running if t["spec"]["container"]["environment"]["VERSION"]
                   == "2" and t["status"].get("health") == "healthy"]
            return len(new) == 4 and len(running) == 4
        wait_for(updated, "all 4 replicas updated", timeout=180, interval=0.2)
        seen_before = client.ok
        wait_for(lambda: client.ok >= seen_before + 20, "requests after the update")
    finally:
        client.stop.set()
        if client.is_alive():
            client.join(10)
        lab.skiff("delete", "app", "rollout", "--ignore-not-found", check=False)
    assert client.failures == [], f"{len(client.failures)} of " \
        f"{client.ok + len(client.failures)} requests failed: {client.failures[:5]}"
    assert {"v1", "v2"} <= client.seen
    assert lowest >= 3


def _failing(command: str) -> str:
    return f"""\
name: fallback
services:
  worker:
    image: busybox
    command: ["sh", "-c", "{command}"]
    stop_signal: SIGKILL
    deploy:
      replicas: 3
      update_config:
        parallelism: 1
        monitor: 3s
        failure_action: rollback
      rollback_config:
        parallelism: 2
        monitor: 1s
"""


def test_a_failing_update_rolls_back_by_itself_and_apply_wait_says_why(lab: Lab) -> None:
    try:
        lab.apply(_failing("sleep 3600"))
        wait_for(lambda: len(_running_of(lab, "fallback")) == 3, "3 replicas", timeout=120)
        path = lab.state_dir.parent / "fallback.yml"
        path.write_text(_failing("exit 1"))
        lowest = 3
        result: dict[str, Any] = {}

        def apply_wait() -> None:
            result["proc"] = lab.skiff("apply", "-f", str(path), "--wait", "--timeout",
                                       "180", check=False, timeout=240)
        waiter = threading.Thread(target=apply_wait, daemon=True)
        waiter.start()
        while waiter.is_alive():
            old = [t for t in _running_of(lab, "fallback")
                   if t["spec"]["container"]["command"][-1] == "sleep 3600"]
            lowest = min(lowest, len(old))
            waiter.join(0.2)
        proc = result["proc"]
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "rollout rolling back" in proc.stdout or "rollout rolled back" in proc.stdout
        assert "exit code 1" in proc.stdout and "worker." in proc.stdout, proc.stdout
        assert lowest >= 2  # never below desired (3) minus parallelism (1)

        def back() -> bool:
            tasks = _running_of(lab, "fallback")
            return len(tasks) == 3 and all(
                t["spec"]["container"]["command"][-1] == "sleep 3600" for t in tasks)
        wait_for(back, "the old spec back on all 3 replicas", timeout=120)
        service = lab.api_get("/api/v1/services/fallback/worker")
        assert service["status"]["rollout"]["state"] == "rolled back"
        # The way back went by rollback_config.
        way_back = service["spec"]["deploy"]["update_config"]
        assert (way_back["parallelism"], way_back["monitor"]) == (2, 1.0)
        status = lab.skiff("status", "fallback").stdout
        assert "fallback/worker" in status and "rolled back" in status, status

        def reasons() -> set[str] | None:
            out = lab.skiff("events", "--for", "service/fallback/worker", "-o",
                            "json").stdout
            found = {e["reason"] for e in json.loads(out)}
            return found if {"RolloutStarted", "RollingBack", "RolledBack"} <= found \
                else None
        wait_for(reasons, "the rollout's events", timeout=30)
    finally:
        lab.skiff("delete", "app", "fallback", "--ignore-not-found", check=False)


def _running_of(lab: Lab, app: str) -> list[dict[str, Any]]:
    return [t for t in lab.tasks(app) if t["status"]["state"] == "running"
            and t["spec"]["desiredState"] == "running"]


def _undo_app(image: str) -> str:
    return f"""\
name: undo
services:
  web:
    image: {image}
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    deploy:
      replicas: 2
"""


def test_rollout_undo_returns_to_the_previous_image_and_history_shows_both(
        lab: Lab) -> None:
    def images() -> set[str]:
        return {t["spec"]["container"]["image"] for t in _running_of(lab, "undo")}
    try:
        lab.apply(_undo_app("busybox:latest"))
        wait_for(lambda: images() == {"busybox:latest"} and
                 len(_running_of(lab, "undo")) == 2, "revision 1 running", timeout=120)
        lab.apply(_undo_app("busybox"))
        wait_for(lambda: images() == {"busybox"}, "revision 2 running", timeout=120)
        status = lab.skiff("rollout", "status", "undo/web", "--timeout", "60")
        assert "successfully rolled out" in status.stdout
        history = lab.skiff("rollout", "history", "undo/web").stdout.splitlines()
        assert [line.split()[:2] for line in history[1:]] == [
            ["1", "busybox:latest"], ["2", "busybox"]], history

        undone = lab.skiff("rollout", "undo", "undo/web").stdout
        assert "rolled back to revision 1 (busybox:latest)" in undone
        wait_for(lambda: images() == {"busybox:latest"} and
                 len(_running_of(lab, "undo")) == 2, "the previous image back", timeout=120)
        history = lab.skiff("rollout", "history", "undo/web").stdout.splitlines()
        assert [line.split()[:2] for line in history[1:]][-1] == ["3", "busybox:latest"]
        missing = lab.skiff("rollout", "undo", "undo/web", "--to-revision", "9", check=False)
        assert missing.returncode == 1 and "has no revision 9" in missing.stderr

        # Paused, a new spec waits; resumed, it rolls out.
        assert "paused" in lab.skiff("rollout", "pause", "undo/web").stdout
        lab.apply(_undo_app("busybox"))
        wait_for(lambda: lab.api_get("/api/v1/services/undo/web")["status"]["rollout"]
                 ["state"] == "paused", "the rollout to stay paused", timeout=60)
        assert images() == {"busybox:latest"}
        lab.skiff("rollout", "resume", "undo/web")
        wait_for(lambda: images() == {"busybox"} and len(_running_of(lab, "undo")) == 2,
                 "the new spec once resumed", timeout=120)
    finally:
        lab.skiff("delete", "app", "undo", "--ignore-not-found", check=False)
