"""Leader election over the in-memory KV with a fake clock: one leads, another takes
over when the leader's lease lapses."""

from __future__ import annotations

import asyncio
import contextlib

from controller.leader import LeaderElector
from controller.store.keys import LEADER_KEY
from controller.store.memory import MemoryKV


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _until(predicate, what: str, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.01)


async def test_one_leads_and_the_other_takes_over_when_it_steps_down():
    clock = Clock()
    kv = MemoryKV(clock=clock)
    led: list[str] = []

    def work(name: str):
        async def lead() -> None:
            led.append(name)
            await asyncio.Event().wait()
        return lead

    a = LeaderElector(kv, "a", ttl=10, renew_every=0.01)
    b = LeaderElector(kv, "b", ttl=10, renew_every=0.01)
    ta = asyncio.create_task(a.run(work("a")))
    await _until(lambda: a.is_leader, "a to lead")
    tb = asyncio.create_task(b.run(work("b")))
    try:
        await asyncio.sleep(0.05)
        assert led == ["a"] and not b.is_leader
        assert (await kv.get(LEADER_KEY)).value == b"a"

        # a shuts down: it revokes its lease, so b need not wait for the TTL.
        ta.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ta
        await _until(lambda: led == ["a", "b"], "b to take over and start leading")
        assert b.is_leader and not a.is_leader
    finally:
        for t in (ta, tb):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t


async def test_leader_stops_leading_when_its_lease_is_gone():
    clock = Clock()
    kv = MemoryKV(clock=clock)
    stopped = asyncio.Event()

    async def lead() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    a = LeaderElector(kv, "a", ttl=10, renew_every=0.01)
    task = asyncio.create_task(a.run(lead))
    try:
        await _until(lambda: a.is_leader, "a to lead")
        # Time jumps past the TTL without a renewal getting through.
        clock.now += 60
        kv.expire_leases()
        await asyncio.wait_for(stopped.wait(), 5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
