from __future__ import annotations

import asyncio

from controller.reconcilers.workqueue import WorkQueue


async def test_a_key_waits_once_and_comes_back_if_added_while_active():
    q = WorkQueue()
    q.add("a")
    q.add("a")
    q.add("b")
    assert len(q) == 2
    key = await q.get()
    assert key == "a"
    q.add("a")  # changed while being worked on: must run again afterwards
    assert len(q) == 1  # only b waits now
    q.done("a")
    assert len(q) == 2
    assert [await q.get(), await q.get()] == ["b", "a"]


async def test_retry_backs_off_per_key_and_forget_resets():
    q = WorkQueue(base_delay=0.01, max_delay=0.04)
    assert [q.retry("k") for _ in range(4)] == [0.01, 0.02, 0.04, 0.04]
    q.forget("k")
    assert q.retry("k") == 0.01
    key = await asyncio.wait_for(q.get(), 1)
    assert key == "k"
    q.close()


async def test_add_soon_coalesces_a_burst_into_one_add():
    q = WorkQueue()
    for _ in range(1000):
        q.add_soon("svc", delay=0.01)
    assert len(q) == 0  # nothing yet: the burst is still being gathered
    assert await asyncio.wait_for(q.get(), 1) == "svc"
    q.done("svc")
    assert len(q) == 0  # one add for the whole burst
    q.close()
