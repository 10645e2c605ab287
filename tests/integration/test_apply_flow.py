"""apply → services → tasks, scaling, idempotence and delete, against real etcd."""

from __future__ import annotations

from pathlib import Path

import pytest

from skiff.client.api import ApiClient
from skiff.manifest import load_file, to_compose
from skiff.models.kinds import APP, SERVICE, TASK
from tests.integration.conftest import RunningController, wait_for

pytestmark = pytest.mark.integration

HELLO = Path(__file__).resolve().parents[2] / "manifests" / "hello" / "app.yml"


def hello(replicas: int = 3) -> dict:
    doc = to_compose(load_file(HELLO).app)
    doc["services"]["web"].setdefault("deploy", {})["replicas"] = replicas
    return doc


async def _tasks(api: ApiClient, app: str = "hello") -> list[dict]:
    return (await api.list(TASK, app=app))["items"]


async def _running_desired(api: ApiClient) -> list[dict]:
    return [t for t in await _tasks(api) if t["spec"]["desiredState"] == "running"]


async def test_apply_scale_unchanged_delete(controller: RunningController) -> None:
    async with controller.client() as api:
        first = await api.apply(hello(3), source="app.yml")
        assert first["action"] == "created"
        assert [s["action"] for s in first["services"]] == ["create"]

        tasks = await wait_for(lambda: _wait_count(api, 3), "3 tasks")
        assert sorted(t["spec"]["slot"] for t in tasks) == [1, 2, 3]
        assert all(t["status"]["state"] == "pending" for t in tasks)
        # No node has joined: the task says why it waits.
        await wait_for(lambda: _all_say(api, "no node has joined"), "a pending reason")

        scaled = await api.apply(hello(5), source="app.yml")
        assert scaled["action"] == "configured"
        assert scaled["services"][0]["changes"] == ["deploy.replicas: 3 -> 5"]
        assert scaled["app"]["metadata"]["generation"] == 2
        tasks5 = await wait_for(lambda: _wait_count(api, 5), "5 tasks")
        # Scaling keeps the first three tasks: same names, nothing replaced.
        assert {t["metadata"]["name"] for t in tasks} < {t["metadata"]["name"] for t in tasks5}
        svc = await api.get(SERVICE, "web", "hello")
        assert svc["metadata"]["generation"] == 2

        before = await api.get(APP, "hello")
        again = await api.apply(hello(5), source="app.yml")
        assert again["action"] == "unchanged"
        after = await api.get(APP, "hello")
        assert after["metadata"]["generation"] == before["metadata"]["generation"] == 2
        assert {t["metadata"]["name"] for t in await _tasks(api)} == \
            {t["metadata"]["name"] for t in tasks5}

        # The app's status catches up with its generation.
        await wait_for(lambda: _observed(api, 2), "app status observedGeneration 2")

        await api.delete(APP, "hello")
        await wait_for(lambda: _gone(api), "services and tasks to be removed")


async def _wait_count(api: ApiClient, n: int) -> list[dict] | None:
    tasks = await _running_desired(api)
    return tasks if len(tasks) == n else None


async def _all_say(api: ApiClient, fragment: str) -> bool:
    tasks = await _running_desired(api)
    return bool(tasks) and all(fragment in t["status"]["message"] for t in tasks)


async def _observed(api: ApiClient, generation: int) -> bool:
    app = await api.get(APP, "hello")
    status = app.get("status", {})
    return (status.get("observedGeneration") == generation
            and status.get("services", {}).get("web", {}).get("desired") == 5)


async def _gone(api: ApiClient) -> bool:
    services = (await api.list(SERVICE, app="hello"))["items"]
    return not services and not await _tasks(api)


async def test_removed_service_is_deleted_with_its_tasks(controller: RunningController) -> None:
    doc = hello(2)
    doc["services"]["worker"] = {**doc["services"]["web"], "deploy": {"replicas": 1}}
    async with controller.client() as api:
        await api.apply(doc, source="app.yml")
        await wait_for(lambda: _count_of(api, "worker", 1), "the worker task")
        del doc["services"]["worker"]
        result = await api.apply(doc, source="app.yml")
        assert {s["name"]: s["action"] for s in result["services"]} == {
            "web": "unchanged", "worker": "delete"}
        await wait_for(lambda: _count_of(api, "worker", 0), "the worker task to go")
        names = [s["metadata"]["name"] for s in (await api.list(SERVICE, app="hello"))["items"]]
        assert names == ["web"]


async def _count_of(api: ApiClient, service: str, n: int) -> bool:
    items = (await api.list(TASK, app="hello", service=service))["items"]
    services = {s["metadata"]["name"] for s in (await api.list(SERVICE, app="hello"))["items"]}
    return len(items) == n and ((service in services) == (n > 0))


async def test_changed_image_replaces_tasks(controller: RunningController) -> None:
    async with controller.client() as api:
        await api.apply(hello(2), source="app.yml")
        old = {t["metadata"]["name"] for t in await wait_for(lambda: _wait_count(api, 2), "2")}
        doc = hello(2)
        doc["services"]["web"]["image"] = "busybox:other"
        await api.apply(doc, source="app.yml")

        async def replaced() -> bool:
            tasks = await _tasks(api)
            return (len(tasks) == 2 and not old & {t["metadata"]["name"] for t in tasks}
                    and all(t["spec"]["container"]["image"] == "busybox:other" for t in tasks))

        await wait_for(replaced, "tasks with the new image")


async def test_dry_run_changes_nothing(controller: RunningController) -> None:
    async with controller.client() as api:
        result = await api.apply(hello(3), source="app.yml", dry_run=True)
        assert result["action"] == "created" and result["dryRun"] is True
        assert (await api.list(APP))["items"] == []
        await api.apply(hello(3), source="app.yml")
        dry = await api.apply(hello(4), source="app.yml", dry_run=True)
        assert dry["action"] == "configured"
        assert dry["services"][0]["changes"] == ["deploy.replicas: 3 -> 4"]
        stored = await api.get(APP, "hello")
        assert stored["spec"]["services"]["web"]["deploy"]["replicas"] == 3
