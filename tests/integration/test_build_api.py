"""`POST /api/v1/builds` on a real controller: who may build, and the errors before any
agent is involved (the whole path, agent included, is tests/e2e/test_lab_build.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from skiff.client.api import ApiClient, ApiError
from skiff.models.codec import encode
from skiff.models.objects import Node, NodeStatus, ObjectMeta
from tests.integration.conftest import RunningController
from tests.integration.test_join import join_token

pytestmark = pytest.mark.integration


async def _chunks() -> AsyncIterator[bytes]:
    yield b"\0" * 1024


async def _build(api: ApiClient, **kw: str) -> list[dict]:
    return [line async for line in api.build({"dockerfile": "FROM busybox\n"}, _chunks(),
                                             **kw)]


async def test_no_node_to_build_on_is_a_clear_error(controller: RunningController) -> None:
    async with ApiClient(controller.url, controller.token) as api:
        with pytest.raises(ApiError) as err:
            await _build(api, image="todo:1")
        assert err.value.status == 503 and err.value.code == "NoBuildNode"
        assert "no node can build: none joined" in err.value.message

        node = Node(metadata=ObjectMeta(name="n1"), status=NodeStatus(ready=False))
        await api.register_node(encode(node))
        with pytest.raises(ApiError) as err:
            await _build(api, image="todo:1")
        assert "n1 not ready" in err.value.message
        with pytest.raises(ApiError) as err:
            await _build(api, node="n7")
        assert "no node n7" in err.value.message


async def test_a_node_may_not_build(controller: RunningController) -> None:
    async with ApiClient(controller.url, join_token(controller)) as joiner:
        node_token = await joiner.join("n1")
    async with ApiClient(controller.url, node_token) as node:
        with pytest.raises(ApiError) as err:
            await _build(node, image="todo:1")
        assert err.value.status == 403
        assert "may not create build todo:1" in err.value.message
