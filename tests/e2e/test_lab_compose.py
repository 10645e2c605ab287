"""Compose's depends_on on the lab: a service's tasks wait, pending and saying why, until
what they depend on meets its condition, whichever nodes each runs on."""

from __future__ import annotations

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
