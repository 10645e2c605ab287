"""The networking reconcilers wired together over the in-memory store (the same flow runs
against real etcd in tests/integration/test_controller_networking.py)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from ipaddress import IPv4Network
from typing import Any

from controller.apply import apply_app
from controller.manager import run_reconcilers
from controller.reconcilers.netregistry import Claim, NetworkRegistry, encode_claims
from controller.store.errors import NotFound
from controller.store.keys import IPAM_NETWORKS_KEY
from controller.store.kv import Put
from controller.store.memory import MemoryKV
from controller.store.objects import ObjectStore
from skiff.models.appspec import AppSpec, NetworkSpec, ServiceNetwork
from skiff.models.kinds import APP, ENDPOINTS, NETWORK, TASK
from skiff.models.objects import Network, Node, NodeStatus, ObjectMeta
from tests.unit.factories import spec


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(store: ObjectStore):
    task = asyncio.create_task(run_reconcilers(store))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def node(name: str, address: str) -> Node:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return Node(metadata=ObjectMeta(name=name),
                status=NodeStatus(ready=True, address=address, last_heartbeat=now))


def todo() -> AppSpec:
    web = spec(replicas=1, networks={"default": ServiceNetwork(),
                                     "back": ServiceNetwork(aliases=["www"])})
    return AppSpec(name="todo", services={"web": web},
                   networks={"default": NetworkSpec(name="todo_default"),
                             "back": NetworkSpec(name="todo_back")})


async def test_app_networks_endpoints_and_their_removal():
    store = ObjectStore(MemoryKV())
    await store.create(node("n1", "192.168.5.1"))
    async with running(store):
        await apply_app(store, todo())

        async def networks_ready() -> list[Network] | None:
            nets, _ = await store.list(NETWORK)
            ok = len(nets) == 2 and all(n.status.ready and "n1" in n.status.nodes for n in nets)
            return nets if ok else None

        nets = await until(networks_ready, "two networks with a slice on n1")
        by_name = {n.metadata.name: n for n in nets}
        assert by_name["todo_back"].status.subnet == "10.128.0.0/20"
        assert by_name["todo_default"].status.subnet == "10.128.16.0/20"
        assert {n.status.vni for n in nets} == {4096, 4097}

        # A second node gets a slice of every network.
        await store.create(node("n2", "192.168.5.2"))
        await until(lambda: _all_have(store, "n2"), "slices on n2")

        # The replica reports its addresses: the service's Endpoints show it.
        tasks = await until(lambda: _bound(store), "the task bound")
        t = tasks[0]
        status = dataclasses.replace(t.status, state="running", networks={
            "todo_default": "10.128.16.2", "todo_back": "10.128.0.2"})
        await store.update(dataclasses.replace(t, status=status))

        async def endpoint() -> Any:
            try:
                ep = await store.get(ENDPOINTS, "web", "todo")
            except NotFound:
                return None
            return ep if ep.addresses and ep.addresses[0].ready else None

        ep = await until(endpoint, "a ready address in the endpoints")
        assert ep.names == {"todo_back": ["web", "www"], "todo_default": ["web"]}
        assert ep.addresses[0].vtep in ("192.168.5.1", "192.168.5.2")

        # Delete the app: the network waits for the replica to stop (as its agent would).
        await store.delete(APP, "todo")

        async def stopped_as_asked() -> bool:
            tasks, _ = await store.list(TASK)
            for x in tasks:
                if x.spec.desired_state == "shutdown" and not x.terminal:
                    await store.update(dataclasses.replace(x, status=dataclasses.replace(
                        x.status, state="shutdown")))
            return not tasks

        await until(stopped_as_asked, "the task gone")
        await until(lambda: _none_left(store), "networks and endpoints gone")
        await until(lambda: _registry_empty(store), "registry entries freed")


async def _all_have(store: ObjectStore, name: str) -> bool:
    nets, _ = await store.list(NETWORK)
    return bool(nets) and all(name in n.status.nodes for n in nets)


async def _bound(store: ObjectStore) -> list[Any] | None:
    tasks, _ = await store.list(TASK)
    return tasks if tasks and all(t.spec.node_name for t in tasks) else None


async def _none_left(store: ObjectStore) -> bool:
    nets, _ = await store.list(NETWORK)
    eps, _ = await store.list(ENDPOINTS)
    return not nets and not eps


async def _registry_empty(store: ObjectStore) -> bool:
    return await store.kv.get(IPAM_NETWORKS_KEY) is None


async def test_claims_of_networks_gone_while_no_controller_ran_are_swept():
    kv = MemoryKV()
    store = ObjectStore(kv)
    await kv.txn([], [Put(IPAM_NETWORKS_KEY, encode_claims({
        "ghost": Claim(IPv4Network("10.128.0.0/20"), 4096)}))])
    await store.create(Network(metadata=ObjectMeta(name="kept"), spec=NetworkSpec(name="kept")))
    async with running(store):
        async def swept() -> bool:
            claims, _ = await NetworkRegistry(kv).load()
            return set(claims) == {"kept"}

        await until(swept, "the ghost's claim freed, kept's made")
        kept = await store.get(NETWORK, "kept")
        assert kept.status.subnet and kept.status.vni
