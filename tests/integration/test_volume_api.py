"""The volume API on a real controller: names checked, a volume claimed by the first
node to make it and by no other, removal refused while in use and done in two steps when
a node holds data, and the apply-time checks of external volumes and bind sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.store.etcd_server import EtcdProcess
from skiff.client.api import ApiClient, ApiError
from skiff.models.codec import encode
from skiff.models.kinds import VOLUME
from skiff.models.objects import VolumeStatus
from tests.integration.conftest import RunningController, running_controller, wait_for
from tests.integration.test_join import join_token

pytestmark = pytest.mark.integration


async def _create(api: ApiClient, **body: object) -> dict:
    return await api.request("POST", "/api/v1/volumes", body=body)


def _status(node: str, mountpoint: str = "/v") -> dict:
    return encode(VolumeStatus(node=node, mountpoint=mountpoint,
                               created_at="2026-11-28T00:00:00Z", ready=True))


@pytest.mark.parametrize(("body", "message"), [
    ({"name": "a/b"}, "name: volume name \"a/b\" must be letters"),
    ({"name": ".."}, "name: volume name \"..\" must be letters"),
    ({"name": "-x"}, "name: volume name \"-x\" must be letters"),
    ({"name": "ok", "driver": "nfs"}, "driver: driver 'nfs': skiff has the local driver"),
    ({"name": "ok", "node": "n9"}, "node: no node n9"),
    ({"name": "ok", "labels": {"a": 1}}, "labels: must map strings to strings"),
    ({"name": "ok", "size": 3}, "unknown keys size"),
])
async def test_bad_volumes_are_refused_naming_the_field(controller: RunningController,
                                                        body: dict, message: str) -> None:
    async with controller.client() as api:
        with pytest.raises(ApiError) as err:
            await _create(api, **body)
        assert message in err.value.message
        assert (await api.list(VOLUME))["items"] == []


async def test_claim_use_and_two_step_removal(controller: RunningController) -> None:
    async with ApiClient(controller.url, join_token(controller)) as joiner:
        n1, n2 = await joiner.join("n1"), await joiner.join("n2")
    async with controller.client() as admin, ApiClient(controller.url, n1) as node1, \
            ApiClient(controller.url, n2) as node2:
        made = await _create(admin, name="db", labels={"tier": "db"})
        assert made["spec"]["node"] == "" and made["metadata"]["labels"] == {"tier": "db"}
        with pytest.raises(ApiError) as err:
            await _create(admin, name="db")
        assert err.value.status == 409

        await node1.request("PUT", "/api/v1/volumes/db/status", body=_status("n1"))
        claimed = await admin.get(VOLUME, "db")
        assert claimed["spec"]["node"] == "n1" and claimed["status"]["ready"]
        with pytest.raises(ApiError) as err:
            await node2.request("PUT", "/api/v1/volumes/db/status", body=_status("n2"))
        assert err.value.status == 403  # not its volume

        # In use by an app's service: refused, naming it.
        await admin.apply({"name": "shop", "services": {"db": {
            "image": "busybox", "volumes": ["data:/data"]}},
            "volumes": {"data": {"external": True, "name": "db"}}}, source="t.yml")
        await wait_for(lambda: _service_exists(admin), "the app's service")
        with pytest.raises(ApiError) as err:
            await admin.request("DELETE", "/api/v1/volumes/db")
        assert err.value.status == 409 and "in use by service shop/db" in err.value.message
        await admin.request("DELETE", "/api/v1/apps/shop")
        await wait_for(lambda: _no_service(admin), "the service gone")

        with pytest.raises(ApiError) as err:
            await node1.request("DELETE", "/api/v1/volumes/db")
        assert err.value.status == 409  # an agent deletes only what was marked
        answer = await admin.request("DELETE", "/api/v1/volumes/db")
        assert answer["removed"] is False and answer["volume"]["spec"]["deleting"]
        with pytest.raises(ApiError) as err:
            await node2.request("DELETE", "/api/v1/volumes/db")
        assert err.value.status == 403
        await node1.request("DELETE", "/api/v1/volumes/db")
        assert (await admin.list(VOLUME))["items"] == []

        # Never made on a node: removed at once.
        await _create(admin, name="empty")
        assert (await admin.request("DELETE", "/api/v1/volumes/empty"))["removed"] is True


async def _service_exists(api: ApiClient) -> bool:
    return bool((await api.request("GET", "/api/v1/services"))["items"])


async def _no_service(api: ApiClient) -> bool:
    return not (await api.request("GET", "/api/v1/services"))["items"]


async def test_apply_checks_external_volumes_and_bind_sources(
        etcd_server: EtcdProcess, tmp_path: Path) -> None:
    async with running_controller(etcd_server, tmp_path,
                                  allowed_bind_prefixes=("/srv/apps",)) as controller, \
            controller.client() as api:
        doc = {"name": "x", "services": {"a": {"image": "busybox", "volumes": [
            "/etc/ssl:/ssl", "/srv/apps/x:/app", "cache:/cache"]}},
            "volumes": {"cache": {"external": True}}}
        with pytest.raises(ApiError) as err:
            await api.apply(doc, source="x.yml")
        assert err.value.status == 422
        assert "volumes.cache: external volume cache does not exist" in err.value.message
        assert "services.a.volumes[0]: bind source /etc/ssl is outside the allowed bind " \
               "prefixes of this cluster: /srv/apps" in err.value.message
        assert (await api.request("GET", "/api/v1/apps"))["items"] == []

        await _create(api, name="cache")
        doc["services"]["a"]["volumes"] = ["/srv/apps/x:/app", "cache:/cache"]
        answer = await api.apply(doc, source="x.yml")
        assert answer["action"] == "created"


async def test_sensitive_bind_sources_draw_a_warning(controller: RunningController) -> None:
    async with controller.client() as api:
        answer = await api.apply({"name": "y", "services": {"a": {
            "image": "busybox", "volumes": ["/etc:/host-etc"]}}}, source="y.yml")
        assert any("bind source /etc exposes the host's /etc" in w
                   for w in answer["warnings"])
