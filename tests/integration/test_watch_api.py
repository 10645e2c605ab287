"""The watch endpoint: NDJSON from a resourceVersion, 410 when too old, and the client
that resumes and relists."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from controller.store.etcd import EtcdKV
from skiff.models.kinds import APP, TASK
from tests.integration.conftest import RunningController, wait_for
from tests.integration.test_apply_flow import hello

pytestmark = pytest.mark.integration


async def _lines(controller: RunningController, query: str, count: int,
                 until: str | None = None) -> list[dict]:
    headers = {"Authorization": f"Bearer {controller.token}"}
    out: list[dict] = []
    async with aiohttp.ClientSession() as s, s.get(
            f"{controller.url}/api/v1/{query}", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"].startswith("application/x-ndjson")
        async for line in resp.content:
            out.append(json.loads(line))
            if len(out) == count or (until and out[-1]["type"] == until):
                return out
    return out


async def test_watch_from_a_revision_sees_later_changes(controller) -> None:
    async with controller.client() as api:
        rv = (await api.list(APP))["metadata"]["resourceVersion"]
        watching = asyncio.create_task(
            _lines(controller, f"apps?watch=1&resourceVersion={rv}", 50, until="DELETED"))
        await api.apply(hello(1), source="app.yml")
        await api.delete(APP, "hello")
        events = await asyncio.wait_for(watching, 10)
    first, second = events[0], events[-1]
    assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == "hello"
    # Between them the reconcilers may have written the app's status (MODIFIED).
    assert {e["type"] for e in events[1:-1]} <= {"MODIFIED"}
    assert second["type"] == "DELETED"
    # A deletion carries the revision of the deletion, so resuming after it is exact.
    assert second["object"]["metadata"]["resourceVersion"] > \
        first["object"]["metadata"]["resourceVersion"]


async def test_watch_without_revision_lists_then_bookmarks(controller) -> None:
    async with controller.client() as api:
        await api.apply(hello(1), source="app.yml")
        events = await asyncio.wait_for(_lines(controller, "apps?watch=true", 2), 10)
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["resourceVersion"] >= \
        events[0]["object"]["metadata"]["resourceVersion"]


async def test_too_old_revision_is_410_and_the_client_relists(controller, etcd_server) -> None:
    async with controller.client() as api:
        await api.apply(hello(2), source="app.yml")
        await wait_for(lambda: _count(api, 2), "2 tasks")
        old_rv = 1
        kv = EtcdKV(etcd_server.host, etcd_server.port)
        try:
            _, now = await kv.range("/skiff/")
            await kv.compact(now)
        finally:
            await kv.close()
        headers = {"Authorization": f"Bearer {controller.token}"}
        async with aiohttp.ClientSession() as s, s.get(
                f"{controller.url}/api/v1/tasks?watch=1&resourceVersion={old_rv}",
                headers=headers) as resp:
            body = await resp.json(content_type=None)
        assert resp.status == 410 and body["code"] == "Expired"
        assert "too old" in body["message"]

        # The client takes 410 as "relist": it yields the current tasks as ADDED.
        seen: list[dict] = []

        async def consume() -> None:
            async for event in api.watch(TASK, resource_version=old_rv, app="hello"):
                seen.append(event)
                if len(seen) == 2:
                    return

        await asyncio.wait_for(consume(), 10)
        assert {e["type"] for e in seen} == {"ADDED"}


async def _count(api, n: int) -> bool:
    return len((await api.list(TASK, app="hello"))["items"]) == n
