"""`skiff network ...` against a real controller and etcd: what a user types and sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from skiff.models.kinds import APP
from tests.integration.cli import skiff
from tests.integration.conftest import RunningController, wait_for

pytestmark = pytest.mark.integration

TODO = """name: todo
services:
  web:
    image: busybox
    networks: [front]
  db:
    image: busybox
    networks: [back]
networks:
  front:
  back:
    ipam:
      config: [{subnet: 10.77.0.0/24}]
"""


def _auth(controller: RunningController) -> list[str]:
    return ["--server", controller.url, "--token", controller.token]


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "todo" / "compose.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return str(path)


async def _app_spec(controller: RunningController) -> dict:
    async with controller.client() as api:
        return (await api.get(APP, "todo"))["spec"]


async def test_create_ls_inspect_rm(controller: RunningController) -> None:
    auth = _auth(controller)
    res = await skiff("network", "create", "shared", "--subnet", "10.70.0.0/24",
                      "--internal", "--label", "team=web", *auth)
    assert (res.code, res.out.strip()) == (0, "network/shared created"), res.err
    assert (await skiff("network", "create", "plain", *auth)).code == 0

    async def allocated() -> dict[str, list[str]] | None:
        # The controller gives each a subnet and a VNI; no node has joined.
        res = await skiff("network", "ls", *auth)
        assert res.code == 0, res.err
        lines = res.out.splitlines()
        assert lines[0].split() == ["NAME", "APP", "SUBNET", "VNI", "NODES", "READY"]
        rows = {line.split()[0]: line.split() for line in lines[1:]}
        return rows if all(r[3].isdigit() for r in rows.values()) else None
    rows = await wait_for(allocated, "both networks to get a VNI")
    assert rows["shared"][:3] == ["shared", "-", "10.70.0.0/24"]
    assert rows["shared"][4] == "0"
    assert rows["plain"][2].startswith("10.") and rows["plain"][2] != "10.70.0.0/24"
    res = await skiff("network", "ls", "-o", "wide", *auth)
    assert res.out.splitlines()[0].split()[6:9] == ["INTERNAL", "ATTACHABLE", "AGE"]
    res = await skiff("network", "ls", "-o", "name", *auth)
    assert res.out.split() == ["network/plain", "network/shared"]
    res = await skiff("get", "networks", *auth)  # the same table through get
    assert res.code == 0 and "shared" in res.out

    res = await skiff("network", "inspect", "shared", *auth)
    assert res.code == 0, res.err
    shown = json.loads(res.out)
    assert shown["spec"]["internal"] is True
    assert shown["metadata"]["labels"] == {"team": "web"}
    res = await skiff("network", "inspect", "-o", "yaml", "shared", "plain", *auth)
    assert [n["metadata"]["name"] for n in yaml.safe_load(res.out)] == ["shared", "plain"]
    res = await skiff("describe", "network", "shared", *auth)
    assert res.code == 0 and "Subnet:" in res.out and "10.70.0.0/24" in res.out, res

    res = await skiff("network", "rm", "shared", "nope", "plain", *auth)
    assert res.code == 1
    assert res.out.split() == ["network/shared", "removed", "network/plain", "removed"]
    assert "error: network nope not found" in res.err
    res = await skiff("network", "ls", *auth)
    assert res.out.strip() == "No networks found."


@pytest.mark.parametrize("args, message", [
    (["bad/name"], "network name 'bad/name' must be letters"),
    (["n", "--subnet", "10.0.0.0/26"], "too small to split across nodes"),
    (["n", "--subnet", "banana"], "'banana' is not a CIDR subnet"),
    (["n", "--label", "novalue"], "--label 'novalue': expected KEY=VALUE"),
])
async def test_bad_creates_say_why(controller: RunningController, args: list[str],
                                   message: str) -> None:
    res = await skiff("network", "create", *args, *_auth(controller))
    assert res.code == 1
    assert message in res.err, res.err


async def test_subnet_clash_at_create_and_apply(controller: RunningController,
                                                tmp_path: Path) -> None:
    auth = _auth(controller)
    assert (await skiff("network", "create", "wide", "--subnet", "10.77.0.0/16",
                        *auth)).code == 0
    res = await skiff("apply", "-f", _write(tmp_path, TODO), *auth)
    assert res.code == 1
    assert "subnet 10.77.0.0/24 of network todo_back overlaps network wide (standalone, " \
           "10.77.0.0/16)" in res.err, res.err
    res = await skiff("get", "apps", *auth)
    assert res.out.strip() == "No apps found."


async def test_connect_and_disconnect_edit_the_app(controller: RunningController,
                                                   tmp_path: Path) -> None:
    auth = _auth(controller)
    assert (await skiff("apply", "-f", _write(tmp_path, TODO), *auth)).code == 0
    assert (await skiff("network", "create", "shared", *auth)).code == 0

    res = await skiff("network", "connect", "shared", "todo/web", "--alias", "www", *auth)
    assert (res.code, res.out.strip()) == (0, "network/shared connected to todo/web"), res.err
    spec = await _app_spec(controller)
    assert spec["networks"]["shared"]["external"] is True
    assert spec["services"]["web"]["networks"]["shared"] == {"aliases": ["www"]}
    async with controller.client() as api:
        app = await api.get(APP, "todo")
    assert app["metadata"]["generation"] == 2

    # The app's own network, by its cluster name: no external entry is added.
    res = await skiff("network", "connect", "todo_back", "todo/web", *auth)
    assert res.code == 0, res.err
    spec = await _app_spec(controller)
    assert set(spec["services"]["web"]["networks"]) == {"front", "shared", "back"}
    assert set(spec["networks"]) == {"front", "back", "shared"}

    # The reconcilers pick the change up: the web service follows its app.
    async def service_on_three() -> bool:
        res = await skiff("get", "service", "todo/web", "-o", "json", *auth)
        return res.code == 0 and len(json.loads(res.out)["spec"]["networks"]) == 3
    await wait_for(service_on_three, "todo/web's service to be on three networks")

    res = await skiff("network", "connect", "shared", "todo/web", *auth)
    assert res.code == 1 and "already on network shared" in res.err
    res = await skiff("network", "rm", "shared", *auth)
    assert res.code == 1 and "in use by 1 service(s): todo/web" in res.err, res.err

    res = await skiff("network", "disconnect", "shared", "todo/web", *auth)
    assert (res.code, res.out.strip()) == (0, "network/shared disconnected from todo/web")
    spec = await _app_spec(controller)
    assert "shared" not in spec["networks"]  # the entry connect added goes with it
    assert set(spec["services"]["web"]["networks"]) == {"front", "back"}
    res = await skiff("network", "disconnect", "shared", "todo/web", *auth)
    assert res.code == 1 and "service todo/web is not on network shared" in res.err

    assert (await skiff("network", "disconnect", "todo_back", "todo/web", *auth)).code == 0
    res = await skiff("network", "disconnect", "todo_front", "todo/web", *auth)
    assert res.code == 1
    assert "network todo_front is the only network of service todo/web" in res.err

    async def removable() -> bool:
        res = await skiff("network", "rm", "shared", *auth)
        return res.code == 0
    await wait_for(removable, "network shared to be free to remove", timeout=30)


@pytest.mark.parametrize("args, message", [
    (["nope", "todo/web"], "network nope not found"),
    (["back", "todo/web"], "network back not found (app todo calls its network back "
                           "todo_back in the cluster)"),
    (["todo_back", "todo/nope"], "app todo has no service 'nope' (it has: db, web)"),
    (["todo_back", "other/web"], "apps/other"),
    (["todo_back", "web"], "expected APP/SERVICE"),
])
async def test_connect_refusals(controller: RunningController, tmp_path: Path,
                                args: list[str], message: str) -> None:
    auth = _auth(controller)
    assert (await skiff("apply", "-f", _write(tmp_path, TODO), *auth)).code == 0
    res = await skiff("network", "connect", *args, *auth)
    assert res.code == 1
    assert message in res.err, res.err


async def test_connect_checks_dns_names_on_the_shared_network(controller: RunningController,
                                                              tmp_path: Path) -> None:
    auth = _auth(controller)
    assert (await skiff("network", "create", "shared", *auth)).code == 0
    assert (await skiff("apply", "-f", _write(tmp_path, TODO), *auth)).code == 0
    other = tmp_path / "other" / "compose.yml"
    other.parent.mkdir()
    other.write_text("name: other\nservices:\n  api:\n    image: busybox\n"
                     "    networks: [shared]\nnetworks:\n  shared: {external: true}\n")
    assert (await skiff("apply", "-f", str(other), *auth)).code == 0
    res = await skiff("network", "connect", "shared", "todo/web", "--alias", "api", *auth)
    assert res.code == 1
    assert 'alias "api" of service todo/web on network shared is already the service name ' \
           "of service other/api there" in res.err, res.err
    spec = await _app_spec(controller)
    assert "shared" not in spec["networks"]
