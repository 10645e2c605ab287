"""A rolling update on the lab, as issue 9 asks: 4 replicas behind a published port,
updated start-first one at a time while a client sends requests without pause; not one
request fails, and the service never has fewer than 3 replicas running."""

from __future__ import annotations

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
