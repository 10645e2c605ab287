"""Events through the API of a real controller: a node records events about its own
tasks and node only; anyone with access lists them."""

from __future__ import annotations

import pytest

from skiff.client.api import ApiClient, ApiError
from skiff.models.appspec import ServiceSpec
from skiff.models.kinds import EVENT, TASK
from skiff.models.objects import ObjectMeta, Task, TaskSpec
from tests.integration.conftest import RunningController
from tests.integration.test_join import join_token

pytestmark = pytest.mark.integration


def _event(kind: str, name: str, app: str | None = None, reason: str = "Started") -> dict:
    return {"involved": {"kind": kind, "name": name, "app": app}, "reason": reason,
            "message": "container sk1", "type": "Normal"}


async def test_a_node_records_events_of_its_own_only(controller: RunningController) -> None:
    async with ApiClient(controller.url, join_token(controller)) as joiner:
        n1 = await joiner.join("n1")
        await joiner.join("n2")
    for name, node in (("web.1.a", "n1"), ("web.2.b", "n2")):
        await controller.store.create(Task(
            metadata=ObjectMeta(name=name, app="shop"),
            spec=TaskSpec(service="web", slot=1, spec_hash="h", service_generation=1,
                          container=ServiceSpec(image="busybox"), node_name=node)))
    async with ApiClient(controller.url, n1) as node1, controller.client() as admin:
        made = await node1.request("POST", "/api/v1/events",
                                   body=_event("Task", "web.1.a", "shop"))
        assert made["source"] == "node n1" and made["metadata"]["app"] == "shop"
        with pytest.raises(ApiError) as err:
            await node1.request("POST", "/api/v1/events",
                                body=_event("Task", "web.2.b", "shop"))
        assert err.value.status == 403
        await node1.request("POST", "/api/v1/events", body=_event("Node", "n1", None,
                                                                   "NodeReady"))
        with pytest.raises(ApiError) as err:
            await node1.request("POST", "/api/v1/events", body=_event("Node", "n2"))
        assert err.value.status == 403
        with pytest.raises(ApiError) as err:
            await node1.request("POST", "/api/v1/events",
                                body={**_event("Task", "web.1.a", "shop"), "type": "Loud"})
        assert err.value.status == 400
        listed = (await admin.list(EVENT))["items"]
        assert sorted(e["reason"] for e in listed) == ["NodeReady", "Started"]
        assert (await admin.get(TASK, "web.1.a", "shop"))["spec"]["nodeName"] == "n1"
