"""Compose's depends_on on the lab: a service's tasks wait, pending and saying why, until
what they depend on meets its condition, whichever nodes each runs on."""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import pytest

from tests.e2e.conftest import Lab, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]


def _by_service(lab: Lab, app: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for task in lab.tasks(app):
        out.setdefault(task["spec"]["service"], []).append(task)
    return out


def test_depends_on_holds_tasks_until_the_condition_is_met_across_nodes(lab: Lab) -> None:
    gate = f"/tmp/skiff-e2e-gate-{lab.name}"
    try:
        lab.apply(f"""\
name: order
services:
  migrate:
    image: busybox
    restart: "no"
    # Runs until the test lets it finish, then exits 0.
    command: ["sh", "-c", "while [ ! -e /gate/open ]; do sleep 0.2; done; echo migrated"]
    volumes:
      - {gate}:/gate
    deploy:
      placement:
        constraints: ["node.name=={lab.node(1)}"]
  db:
    image: busybox
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    depends_on:
      migrate: {{condition: service_completed_successfully}}
    deploy:
      placement:
        constraints: ["node.name=={lab.node(2)}"]
  web:
    image: busybox
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    depends_on: [db]
    deploy:
      replicas: 2
      placement:
        constraints: ["node.name=={lab.node(3)}"]
""")
        wait_for(lambda: any(t["status"]["state"] == "running"
                             for t in _by_service(lab, "order").get("migrate", [])),
                 "migrate running", timeout=120)
        tasks = _by_service(lab, "order")
        assert [t["status"]["state"] for t in tasks["db"]] == ["pending"]
        assert tasks["db"][0]["status"]["message"] == \
            "waiting for service migrate (completed_successfully)"
        assert {t["status"]["message"] for t in tasks["web"]} == \
            {"waiting for service db (started)"}
        assert all(t["spec"].get("nodeName") is None for t in tasks["web"] + tasks["db"])

        with open(f"{gate}/open", "w") as f:
            f.write("go\n")

        def all_up() -> dict[str, list[dict[str, Any]]] | None:
            now = _by_service(lab, "order")
            web_up = sum(t["status"]["state"] == "running" for t in now.get("web", []))
            db_up = any(t["status"]["state"] == "running" for t in now.get("db", []))
            return now if web_up == 2 and db_up else None
        done = wait_for(all_up, "db, then both web replicas, running", timeout=120)
        migrate = done["migrate"][0]["status"]
        assert (migrate["state"], migrate["exitCode"]) == ("complete", 0)
        db_started = min(t["status"]["startedAt"] for t in done["db"])
        assert all(t["status"]["startedAt"] >= db_started for t in done["web"])
        assert migrate["finishedAt"] <= db_started
    finally:
        lab.skiff("delete", "app", "order", "--ignore-not-found", check=False)
        shutil.rmtree(gate, ignore_errors=True)


def test_health_checks_gate_service_healthy_and_restart_unhealthy_replicas(lab: Lab) -> None:
    gate = f"/tmp/skiff-e2e-health-{lab.name}"
    try:
        lab.apply(f"""\
name: healthy
services:
  db:
    image: busybox
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    restart: always
    volumes:
      - {gate}:/gate
    healthcheck:
      test: ["CMD", "test", "-e", "/gate/ready"]
      interval: 1s
      timeout: 2s
      retries: 2
  web:
    image: busybox
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    depends_on:
      db: {{condition: service_healthy}}
""")

        def db_task() -> dict[str, Any] | None:
            tasks = _by_service(lab, "healthy").get("db", [])
            return tasks[0] if tasks and tasks[0]["status"]["state"] == "running" else None
        db = wait_for(db_task, "db running", timeout=120)
        assert db["status"].get("health") in ("starting", "unhealthy")
        web = _by_service(lab, "healthy")["web"][0]
        assert web["status"]["state"] == "pending"
        assert web["status"]["message"] == "waiting for service db (healthy)"

        with open(f"{gate}/ready", "w") as f:
            f.write("ok\n")
        wait_for(lambda: (t := db_task()) and t["status"].get("health") == "healthy",
                 "db healthy", timeout=60)
        wait_for(lambda: _by_service(lab, "healthy")["web"][0]["status"]["state"] ==
                 "running", "web running once db is healthy", timeout=60)

        os.unlink(f"{gate}/ready")  # the check fails twice: unhealthy, stopped, restarted

        def restarted() -> dict[str, Any] | None:
            tasks = _by_service(lab, "healthy").get("db", [])
            return tasks[0] if tasks and tasks[0]["status"].get("restarts", 0) >= 1 else None
        again = wait_for(restarted, "the unhealthy db restarted", timeout=90)
        assert again["metadata"]["name"] == db["metadata"]["name"]

        # What happened, as `skiff events --for` and `skiff describe` tell it.
        target = f"task/healthy/{db['metadata']['name']}"

        def reasons() -> list[str] | None:
            out = lab.skiff("events", "--for", target, "-o", "json").stdout
            found = [e["reason"] for e in json.loads(out)]
            want = {"Scheduled", "Started", "Healthy", "Unhealthy", "Restarted"}
            return found if want <= set(found) else None
        found = wait_for(reasons, "the db task's events", timeout=30)
        assert found.index("Scheduled") < found.index("Started") < found.index("Unhealthy")
        described = lab.skiff("describe", "task", f"healthy/{db['metadata']['name']}").stdout
        assert "Events:" in described and "Unhealthy" in described
    finally:
        lab.skiff("delete", "app", "healthy", "--ignore-not-found", check=False)
        shutil.rmtree(gate, ignore_errors=True)
