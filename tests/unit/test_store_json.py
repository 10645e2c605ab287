"""The API's fast paths read stored JSON without decoding; they must say the same as
the typed reads."""

from __future__ import annotations

import json

from controller.store.kv import Put
from controller.store.memory import MemoryKV
from controller.store.objects import ObjectStore
from skiff.models.codec import encode
from skiff.models.kinds import TASK
from tests.unit.factories import service, task_of


async def test_list_json_equals_the_typed_list():
    store = ObjectStore(MemoryKV())
    svc = service()
    for slot in (1, 2, 3):
        await store.create(task_of(svc, slot))
    typed, rev = await store.list(TASK)
    raw, rev_raw = await store.list_json(TASK)
    assert rev == rev_raw
    assert [json.loads(r) for r in raw] == [encode(t) for t in typed]
    dicts, _ = await store.list_raw(TASK)
    assert dicts == [encode(t) for t in typed]


async def test_list_json_takes_odd_values_the_slow_way_and_skips_junk():
    kv = MemoryKV()
    store = ObjectStore(kv)
    await store.create(task_of(service(), 1))
    await kv.txn([], [Put("/skiff/tasks/hello/b", b'{"kind":"Task","metadata":{"name":"b"}}'),
                      Put("/skiff/tasks/hello/c", b"not json")])
    raw, _ = await store.list_json(TASK)
    parsed = {json.loads(r)["metadata"]["name"]: json.loads(r) for r in raw}
    assert len(parsed) == 2  # "c" is not JSON: left out
    assert parsed["b"]["metadata"] == {"name": "b", "resourceVersion": kv.revision}
