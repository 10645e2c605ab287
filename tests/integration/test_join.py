"""Joining with tokens, and what a node's own credential may and may not do."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from skiff.client.api import ApiClient, ApiError
from skiff.models.codec import encode
from skiff.models.kinds import NODE, SERVICE, TASK
from skiff.models.objects import Node, NodeStatus, ObjectMeta
from tests.integration.conftest import RunningController, wait_for
from tests.integration.test_apply_flow import hello

pytestmark = pytest.mark.integration


def join_token(controller: RunningController) -> str:
    return (controller.state_dir / "join.token").read_text().strip()


async def _register(token: str, url: str, name: str) -> None:
    async with ApiClient(url, token) as api:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        node = Node(metadata=ObjectMeta(name=name),
                    status=NodeStatus(ready=True, last_heartbeat=now))
        await api.register_node(encode(node))


async def test_join_then_node_is_confined_to_its_own(controller: RunningController) -> None:
    async with ApiClient(controller.url, join_token(controller)) as joiner:
        n1 = await joiner.join("n1")
        n2 = await joiner.join("n2")
        with pytest.raises(ApiError) as err:
            await joiner.join("n1")  # a second agent claiming the name
        assert err.value.status == 409 and "held by an agent" in err.value.message
        with pytest.raises(ApiError) as err:
            await joiner.list(TASK, node="n1")  # a join token does nothing else
        assert err.value.status == 403
    await _register(n1, controller.url, "n1")
    await _register(n2, controller.url, "n2")
    async with controller.client() as admin:
        await admin.apply(hello(4), source="app.yml")

        async def bound() -> list[dict] | None:
            items = (await admin.list(TASK, app="hello"))["items"]
            ok = len(items) == 4 and all(t["spec"].get("nodeName") for t in items)
            return items if ok else None
        tasks = await wait_for(bound, "4 tasks bound to n1 and n2")
    mine = [t for t in tasks if t["spec"]["nodeName"] == "n1"]
    theirs = [t for t in tasks if t["spec"]["nodeName"] == "n2"]
    assert mine and theirs

    async with ApiClient(controller.url, n1) as node:
        listed = (await node.list(TASK, node="n1"))["items"]
        assert {t["metadata"]["name"] for t in listed} == {t["metadata"]["name"] for t in mine}
        for forbidden in (node.list(TASK, node="n2"), node.list(TASK),
                          node.get(TASK, theirs[0]["metadata"]["name"], "hello"),
                          node.get(SERVICE, "web", "hello"), node.list(SERVICE),
                          node.apply(hello(9), source="evil.yml"),
                          node.put_task_status("hello", theirs[0]["metadata"]["name"],
                                               {"state": "failed"}),
                          node.put_node_status("n2", {"ready": False}),
                          node.request("DELETE", "/api/v1/apps/hello"),
                          node.create_join_token(60)):
            with pytest.raises(ApiError) as err:
                await forbidden
            assert err.value.status == 403, err.value.message
        # What it may do: read and report its own.
        own = await node.get(TASK, mine[0]["metadata"]["name"], "hello")
        await node.put_task_status("hello", own["metadata"]["name"],
                                   {**own["status"], "state": "running"})
        await node.put_node_status("n1", {"ready": True, "address": "10.0.0.1"})

    async with controller.client() as admin:
        svc = await admin.get(SERVICE, "web", "hello")
        assert svc["spec"]["deploy"]["replicas"] == 4  # unchanged by the node
        await admin.request("DELETE", "/api/v1/nodes/n1")
    async with ApiClient(controller.url, n1) as node:
        with pytest.raises(ApiError) as err:
            await node.list(TASK, node="n1")
        assert err.value.status == 401  # removing the node revoked its credential
    async with ApiClient(controller.url, join_token(controller)) as joiner:
        assert (await joiner.join("n1")).startswith("skf.")  # the name is free again


async def test_expiring_and_wrong_join_tokens(controller: RunningController) -> None:
    async with controller.client() as admin:
        made = await admin.create_join_token(3600)
        assert made["token"].startswith("skf.") and made["expiresAt"]
        with pytest.raises(ApiError) as err:
            await admin.create_join_token(-5)
        assert err.value.status == 400
    async with ApiClient(controller.url, made["token"]) as joiner:
        assert (await joiner.join("n7")).startswith("skf.")
        with pytest.raises(ApiError) as err:
            await joiner.join("Not A Name")
        assert err.value.status == 400 and "node name" in err.value.message
    expired = await controller_token(controller, ttl=-1)
    async with ApiClient(controller.url, expired) as joiner:
        with pytest.raises(ApiError) as err:
            await joiner.join("n8")
        assert err.value.status == 401
    async with ApiClient(controller.url, "skf.0000.bad") as joiner:
        with pytest.raises(ApiError) as err:
            await joiner.join("n9")
        assert err.value.status == 401
    async with controller.client() as admin:
        nodes = (await admin.list(NODE))["items"]
        assert nodes == []  # no half-registered node from any of this


async def controller_token(controller: RunningController, ttl: float) -> str:
    from controller.auth.tokens import TokenStore
    return await TokenStore(controller.store.kv).create("join", "join", ttl)
