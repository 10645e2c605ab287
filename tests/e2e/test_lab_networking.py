"""User networks across the 3-node lab: names and aliases resolve on any node, networks
isolate, and a published port answers on every node, balanced over all replicas."""

from __future__ import annotations

import subprocess
import urllib.request
from collections import Counter
from typing import Any

import pytest

from tests.e2e.conftest import Lab, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(400)]


def _todo(lab: Lab) -> str:
    # The getting-started pattern: `docker network create todo-app`, then a database with
    # `--network-alias mysql-db` and a client on the same network, on different machines.
    return f"""\
name: todo
services:
  mysql:
    image: busybox
    command: ["nc", "-ll", "-p", "3306", "-e", "echo", "hello-from-mysql"]
    stop_signal: SIGKILL
    networks:
      todo-app:
        aliases: [mysql-db]
    deploy:
      placement:
        constraints: ["node.name=={lab.node(1)}"]
  client:
    image: busybox
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    networks: [todo-app]
    deploy:
      placement:
        constraints: ["node.name=={lab.node(3)}"]
networks:
  todo-app:
    external: true
"""


def _outsider(lab: Lab) -> str:
    return f"""\
name: outsider
services:
  probe:
    image: busybox
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    deploy:
      placement:
        constraints: ["node.name=={lab.node(2)}"]
"""


def _web() -> str:
    return """\
name: mesh
services:
  web:
    image: busybox
    command:
      - sh
      - -c
      - mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www
    stop_signal: SIGKILL
    ports: ["8080:80"]
    deploy:
      replicas: 3
      placement:
        max_replicas_per_node: 1
"""


def _running(lab: Lab, app: str, n: int) -> list[dict[str, Any]] | None:
    tasks = [t for t in lab.tasks(app) if t["spec"]["desiredState"] == "running"]
    running = [t for t in tasks if t["status"]["state"] == "running"]
    return running if len(running) == n else None


def _task(tasks: list[dict[str, Any]], service: str) -> str:
    return next(t["metadata"]["name"] for t in tasks if t["spec"]["service"] == service)


def _exec(lab: Lab, app: str, task: str, *argv: str) -> Any:
    return lab.skiff("exec", f"{app}/{task}", "--", *argv, check=False, timeout=60)


def test_todo_pattern_names_aliases_and_isolation(lab: Lab) -> None:
    lab.skiff("network", "create", "todo-app")
    try:
        lab.apply(_todo(lab))
        lab.apply(_outsider(lab))
        todo = wait_for(lambda: _running(lab, "todo", 2), "mysql and client running", 120)
        probe = wait_for(lambda: _running(lab, "outsider", 1), "the probe running", 120)
        client = _task(todo, "client")
        mysql_ip = next(t["status"]["networks"]["todo-app"] for t in todo
                        if t["spec"]["service"] == "mysql")

        for name in ("mysql", "mysql-db"):
            def answers(name: str = name) -> bool:
                out = _exec(lab, "todo", client, "nc", "-w", "3", name, "3306")
                return "hello-from-mysql" in out.stdout
            # The client (node 3) reaches the database (node 1) over the overlay, by name.
            wait_for(answers, f"client on node 3 to reach {name} on node 1", timeout=30)
        looked_up = _exec(lab, "todo", client, "nslookup", "mysql-db")
        assert mysql_ip in looked_up.stdout, looked_up.stdout

        # A container on another network neither resolves the name nor reaches the address.
        prober = _task(probe, "probe")
        lookup = _exec(lab, "outsider", prober, "nslookup", "mysql")
        assert mysql_ip not in lookup.stdout
        direct = _exec(lab, "outsider", prober, "nc", "-w", "3", mysql_ip, "3306")
        assert "hello-from-mysql" not in direct.stdout
        assert direct.returncode != 0
    finally:
        lab.skiff("delete", "app", "todo", check=False)
        lab.skiff("delete", "app", "outsider", check=False)
        wait_for(lambda: "todo-app" in lab.skiff("network", "rm", "todo-app",
                                                 check=False).stdout,
                 "todo-app removed once its app is gone", timeout=60)


def test_published_port_answers_on_one_node_from_all_replicas(lab: Lab) -> None:
    lab.apply(_web())
    try:
        tasks = wait_for(lambda: _running(lab, "mesh", 3), "3 web replicas running", 120)
        assert len({t["spec"]["nodeName"] for t in tasks}) == 3
        url = f"http://{lab.node_address(1)}:8080/"

        def fetch() -> str | None:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    return str(response.read().decode().strip())
            except OSError:
                return None

        wait_for(lambda: fetch() is not None, "the published port to answer", timeout=60)
        answers = Counter(fetch() for _ in range(300))
        assert None not in answers, answers
        # Every replica answered, including the two on other nodes than node 1.
        assert len(answers) == 3, answers
        vni = lab.api_get("/api/v1/networks/mesh_default")["status"]["vni"]
        assert any(f"{vni:06x}" in name for name in _links(lab, 2))
    finally:
        lab.skiff("delete", "app", "mesh", check=False)
    # Deleting the app removes its network everywhere: devices on every node, the
    # published port, the address claim.
    wait_for(lambda: not any(f"{vni:06x}" in name for i in (1, 2, 3) for name in _links(lab, i)),
             "mesh_default's bridges and VXLAN devices gone from every node", timeout=60)
    assert fetch() is None
    claims = lab.skiff("network", "ls", "-o", "name").stdout.split()
    assert "mesh_default" not in claims and "network/mesh_default" not in claims, claims


def _links(lab: Lab, i: int) -> list[str]:
    out = subprocess.run(["ip", "-n", lab.node(i), "-br", "link"], capture_output=True,
                         text=True, check=True).stdout
    return [line.split()[0].split("@")[0] for line in out.splitlines() if line.strip()]


def _flux(replicas: int) -> str:
    return f"""\
name: flux
services:
  svc:
    image: busybox
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    deploy:
      replicas: {replicas}
  client:
    image: busybox
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
"""


def test_dns_follows_replicas_as_they_come_and_go(lab: Lab) -> None:
    lab.apply(_flux(1))
    try:
        tasks = wait_for(lambda: _running(lab, "flux", 2), "svc and client running", 120)
        client = _task(tasks, "client")

        def svc_addresses() -> set[str]:
            out = _exec(lab, "flux", client, "nslookup", "svc").stdout
            # busybox prints the server first, then "Name:" and "Address:" per answer.
            answers = out.split("Name:", 1)[1] if "Name:" in out else ""
            return {line.split()[-1] for line in answers.splitlines()
                    if line.startswith("Address")}

        wait_for(lambda: len(svc_addresses()) == 1, "svc resolving to its replica", 30)
        lab.apply(_flux(3))
        running = wait_for(lambda: _running(lab, "flux", 4), "3 svc replicas running", 120)
        want = {t["status"]["ip"] for t in running if t["spec"]["service"] == "svc"}
        # Replicas that started later are found once they run, wherever they run.
        wait_for(lambda: svc_addresses() == want, f"svc resolving to {want}", 15)

        lab.apply(_flux(1))
        kept = wait_for(lambda: _running(lab, "flux", 2), "svc scaled back to 1", 120)
        left = {t["status"]["ip"] for t in kept if t["spec"]["service"] == "svc"}
        # Stopped replicas disappear from the answers (allowing for a loaded machine).
        wait_for(lambda: svc_addresses() == left, f"svc resolving to {left} only", 10)
    finally:
        lab.skiff("delete", "app", "flux", check=False)
