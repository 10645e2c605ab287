"""`skiff volume` against a real controller: create with labels, ls, inspect in
Docker's fields, prune of what nothing uses or declares, rm that names who uses it."""

from __future__ import annotations

import json

import pytest

from skiff.models.kinds import VOLUME
from tests.integration.cli import skiff
from tests.integration.conftest import RunningController, wait_for

pytestmark = pytest.mark.integration


def _auth(controller: RunningController) -> list[str]:
    return ["--server", controller.url, "--token", controller.token]


async def test_create_ls_inspect_prune_rm(controller: RunningController) -> None:
    auth = _auth(controller)
    for name in ("loose", "kept"):
        made = await skiff("volume", "create", "--label", "tier=db", name, *auth)
        assert made.code == 0 and made.out == f"{name}\n", made.err
    bad = await skiff("volume", "create", "no/slashes", *auth)
    assert bad.code == 1 and 'volume name "no/slashes"' in bad.err

    listed = await skiff("volume", "ls", *auth)
    assert listed.out.splitlines()[0].split()[:3] == ["DRIVER", "VOLUME", "NAME"]
    assert {line.split()[1] for line in listed.out.splitlines()[1:]} == {"loose", "kept"}

    seen = json.loads((await skiff("volume", "inspect", "kept", *auth)).out)
    assert seen[0]["Name"] == "kept" and seen[0]["Driver"] == "local"
    assert seen[0]["Labels"] == {"tier": "db"} and seen[0]["Scope"] == "local"
    assert set(seen[0]) >= {"CreatedAt", "Mountpoint", "Options", "Node"}
    missing = await skiff("volume", "inspect", "nope", *auth)
    assert missing.code == 1 and "no such volume: nope" in missing.err

    async with controller.client() as api:
        await api.apply({"name": "shop", "services": {"db": {
            "image": "busybox", "volumes": ["data:/data"]}},
            "volumes": {"data": {"external": True, "name": "kept"}}}, source="t.yml")

        async def service() -> bool:
            return bool((await api.request("GET", "/api/v1/services"))["items"])
        await wait_for(service, "the app's service")

    pruned = await skiff("volume", "prune", "-f", *auth)
    assert pruned.code == 0 and pruned.out.splitlines() == ["Deleted Volumes:", "loose"]
    busy = await skiff("volume", "rm", "kept", *auth)
    assert busy.code == 1 and "volume kept is in use by service shop/db" in busy.err
    async with controller.client() as api:
        names = [v["metadata"]["name"] for v in (await api.list(VOLUME))["items"]]
    assert names == ["kept"]
