"""Bad input and missing credentials get one clear JSON error and change nothing."""

from __future__ import annotations

import aiohttp
import pytest

from skiff.client.api import ApiError
from skiff.manifest import MAX_MANIFEST_BYTES
from skiff.models.kinds import APP, NODE
from skiff.models.objects import Node, ObjectMeta
from tests.integration.conftest import RunningController, wait_for
from tests.integration.test_apply_flow import hello

pytestmark = pytest.mark.integration


async def _raw(controller: RunningController, method: str, path: str, *,
               token: str | None = "default", headers: dict | None = None,
               **kw) -> tuple[int, dict]:
    headers = dict(headers or {})
    if token == "default":
        headers["Authorization"] = f"Bearer {controller.token}"
    elif token is not None:
        headers["Authorization"] = token
    async with aiohttp.ClientSession() as s, s.request(
            method, controller.url + path, headers=headers, **kw) as resp:
        return resp.status, await resp.json(content_type=None)


def _shape(body: dict) -> None:
    assert set(body) == {"code", "message", "details"}, body
    assert isinstance(body["message"], str) and body["message"]


@pytest.mark.parametrize("header, message", [
    (None, "missing bearer token"),
    ("Basic abc", "malformed Authorization header"),
    ("Bearer skf.0000.nope", "invalid or expired token"),
    ("Bearer not-a-token", "invalid or expired token"),
])
async def test_every_call_needs_a_valid_token(controller, header, message) -> None:
    for path in ("/healthz", "/api/v1/version", "/api/v1/apps", "/api/v1/nope"):
        status, body = await _raw(controller, "GET", path, token=header)
        assert status == 401, path
        _shape(body)
        assert body["code"] == "Unauthorized"
        assert message in body["message"]


async def test_a_wrong_secret_for_a_real_token_id_is_refused(controller) -> None:
    token_id = controller.token.split(".")[1]
    status, body = await _raw(controller, "GET", "/api/v1/apps",
                              token=f"Bearer skf.{token_id}.wrongsecret")
    assert status == 401 and body["code"] == "Unauthorized"


async def test_config_file_and_token_file_are_private(controller) -> None:
    mode = (controller.state_dir / "admin.token").stat().st_mode & 0o777
    assert mode == 0o600


@pytest.mark.parametrize("body, status, code, fragment", [
    ({"nomanifest": 1}, 400, "BadRequest", "expected {\"manifest\""),
    ({"manifest": "just a string"}, 422, "Invalid", ""),
    ({"manifest": {"name": "x", "services": {"web": {"image": "busybox",
                                                     "deploy": {"replicas": -1}}}}},
     422, "Invalid", "services.web.deploy.replicas"),
    ({"manifest": {"name": "x", "services": {"web": {"image": "busybox",
                                                     "deploy": {"replicas": 10**6}}}}},
     422, "Invalid", "services.web.deploy.replicas"),
    ({"manifest": {"name": "x", "services": {"web": {"image": "busybox",
                                                     "ports": ["80:80:80"]}}}},
     422, "Invalid", "services.web.ports[0]"),
    ({"manifest": {"name": "x", "services": {"web": {"image": "busybox", "colour": 1}}}},
     422, "Invalid", "colour"),
    ({"manifest": {"name": "x", "services": {"web": {"image": 5}}}},
     422, "Invalid", "services.web.image"),
    ({"manifest": hello(), "dryRun": "yes"}, 400, "BadRequest", "dryRun"),
    ({"manifest": hello(), "resourceVersion": "7"}, 400, "BadRequest", "resourceVersion"),
])
async def test_bad_apply_bodies(controller, body, status, code, fragment) -> None:
    got, answer = await _raw(controller, "POST", "/api/v1/apply", json=body)
    assert (got, answer["code"]) == (status, code), answer
    _shape(answer)
    assert fragment in answer["message"] + str(answer["details"])
    assert (await _raw(controller, "GET", "/api/v1/apps"))[1]["items"] == []


async def test_invalid_manifest_lists_problems_with_paths(controller) -> None:
    body = {"manifest": {"name": "x", "services": {"web": {"image": "busybox",
                                                           "ports": ["80:80:80"]}}}}
    _status, answer = await _raw(controller, "POST", "/api/v1/apply", json=body)
    problems = answer["details"]["problems"]
    assert any(p["path"] == "services.web.ports[0]" for p in problems), problems


async def test_not_json_and_too_large(controller) -> None:
    status, body = await _raw(controller, "POST", "/api/v1/apply", data=b"{nope",
                              headers={"Content-Type": "application/json"})
    assert status == 400 and body["code"] == "BadRequest"
    huge = b'{"manifest": "' + b"x" * (5 * MAX_MANIFEST_BYTES) + b'"}'
    status, body = await _raw(controller, "POST", "/api/v1/apply", data=huge,
                              headers={"Content-Type": "application/json"})
    assert status == 413 and body["code"] == "TooLarge"
    _shape(body)


async def test_unknown_kind_and_object(controller) -> None:
    status, body = await _raw(controller, "GET", "/api/v1/widgets")
    assert status == 404 and "unknown kind" in body["message"]
    status, body = await _raw(controller, "GET", "/api/v1/apps/nothere")
    assert status == 404 and body["code"] == "NotFound"
    status, body = await _raw(controller, "GET", "/api/v1/tasks?resourceVersion=x&watch=1")
    assert status == 400 and "resourceVersion" in body["message"]


async def _settled(api, replicas: int) -> dict:
    """The app once the reconcilers stopped writing its status (no node: all pending)."""
    async def check():
        app = await api.get(APP, "hello")
        status = app.get("status", {})
        web = status.get("services", {}).get("web", {})
        return app if (status.get("observedGeneration") == app["metadata"]["generation"]
                       and web.get("desired") == web.get("pending") == replicas) else None
    return await wait_for(check, "the app status to settle")


async def test_stale_resource_version_changes_nothing(controller) -> None:
    async with controller.client() as api:
        await api.apply(hello(3), source="app.yml")
        rv = (await _settled(api, 3))["metadata"]["resourceVersion"]
        ok = await api.apply(hello(4), source="app.yml", resource_version=rv)
        assert ok["action"] == "configured"
        with pytest.raises(ApiError) as err:
            await api.apply(hello(5), source="app.yml", resource_version=rv)
        assert err.value.status == 409 and err.value.code == "Conflict"
        stored = await _settled(api, 4)
        assert stored["spec"]["services"]["web"]["deploy"]["replicas"] == 4

        # PUT with a stale resourceVersion: refused, stored labels unchanged.
        stale = dict(stored)
        stale["metadata"] = {**stored["metadata"], "labels": {"team": "a"},
                             "resourceVersion": rv}
        with pytest.raises(ApiError) as err:
            await api.update(APP, stale)
        assert err.value.status == 409
        assert (await api.get(APP, "hello"))["metadata"]["labels"] == {}

        fresh = await _settled(api, 4)
        fresh["metadata"]["labels"] = {"team": "a"}
        updated = await api.update(APP, fresh)
        assert updated["metadata"]["labels"] == {"team": "a"}
        assert updated["metadata"]["generation"] == fresh["metadata"]["generation"]


async def test_put_validates_the_app_spec(controller) -> None:
    async with controller.client() as api:
        await api.apply(hello(3), source="app.yml")
        app = await api.get(APP, "hello")
        app["spec"]["services"]["web"]["deploy"]["replicas"] = -3
        with pytest.raises(ApiError) as err:
            await api.update(APP, app)
        assert err.value.status == 422
        app["spec"]["services"]["web"]["deploy"]["replicas"] = "three"
        with pytest.raises(ApiError) as err:
            await api.update(APP, app)
        assert err.value.status == 422 and "replicas" in err.value.message


async def test_services_and_tasks_are_not_written_by_users(controller) -> None:
    async with controller.client() as api:
        await api.apply(hello(1), source="app.yml")
    status, body = await _raw(controller, "DELETE", "/api/v1/services/hello/web")
    assert status == 405 and body["code"] == "MethodNotAllowed"
    status, body = await _raw(controller, "PUT", "/api/v1/tasks/hello/x", json={})
    assert status == 405


async def test_node_labels_update_with_compare_and_swap(controller) -> None:
    await controller.store.create(Node(metadata=ObjectMeta(name="n1")))
    async with controller.client() as api:
        node = await api.get(NODE, "n1")
        node["metadata"]["labels"] = {"disk": "ssd"}
        done = await api.update(NODE, node)
        assert done["metadata"]["labels"] == {"disk": "ssd"}
        with pytest.raises(ApiError) as err:
            await api.update(NODE, node)  # the old resourceVersion again
        assert err.value.code == "Conflict"
