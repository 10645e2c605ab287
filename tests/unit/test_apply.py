"""apply_app: created / configured / unchanged, generation, preconditions, dry run."""

from __future__ import annotations

import pytest

from controller.apply import apply_app
from controller.store.errors import Conflict
from controller.store.memory import MemoryKV
from controller.store.objects import ObjectStore
from skiff.models.appspec import AppSpec
from skiff.models.kinds import APP
from tests.unit.factories import spec


def _app(replicas: int) -> AppSpec:
    return AppSpec(name="hello", services={"web": spec(replicas=replicas)})


async def test_created_then_unchanged_then_configured():
    kv = MemoryKV()
    store = ObjectStore(kv)
    first = await apply_app(store, _app(3))
    assert first.action == "created" and first.app.metadata.generation == 1
    revision = kv.revision
    same = await apply_app(store, _app(3))
    assert same.action == "unchanged"
    assert kv.revision == revision  # nothing written
    changed = await apply_app(store, _app(5))
    assert changed.action == "configured"
    assert changed.app.metadata.generation == 2
    assert [c.changes for c in changed.services] == [["deploy.replicas: 3 -> 5"]]


async def test_dry_run_writes_nothing():
    kv = MemoryKV()
    store = ObjectStore(kv)
    result = await apply_app(store, _app(3), dry_run=True)
    assert result.action == "created" and result.dry_run
    assert (await store.list(APP))[0] == []


async def test_stale_precondition_is_a_conflict_and_changes_nothing():
    store = ObjectStore(MemoryKV())
    first = await apply_app(store, _app(3))
    rv = first.app.metadata.resource_version
    await apply_app(store, _app(4), resource_version=rv)
    with pytest.raises(Conflict):
        await apply_app(store, _app(5), resource_version=rv)
    stored = await store.get(APP, "hello")
    assert stored.spec.services["web"].replicas == 4
    with pytest.raises(Conflict):
        await apply_app(store, AppSpec(name="new", services={"a": spec()}), resource_version=7)
