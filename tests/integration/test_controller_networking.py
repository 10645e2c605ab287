"""Cluster networks end to end on the controller, against real etcd: an app's networks
get non-overlapping subnets, distinct VNIs and a slice per node; a replica's addresses
reach its service's Endpoints; deleting the app frees it all."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from ipaddress import IPv4Network
from typing import Any

import pytest

from controller.store.errors import NotFound
from controller.store.keys import IPAM_NETWORKS_KEY
from controller.store.objects import ObjectStore, rfc3339
from skiff.models.appspec import Ipam, IpamConfig, NetworkSpec
from skiff.models.kinds import APP, ENDPOINTS, NETWORK, SERVICE, TASK
from skiff.models.objects import Network, Node, NodeStatus, ObjectMeta
from tests.integration.conftest import RunningController, wait_for

pytestmark = pytest.mark.integration

NODES = {"n1": "192.168.50.1", "n2": "192.168.50.2", "n3": "192.168.50.3"}

TODO: dict[str, Any] = {
    "name": "todo",
    "services": {
        "web": {"image": "busybox", "networks": {"front": None, "back": {"aliases": ["www"]}},
                "ports": ["8080:80"], "deploy": {"replicas": 2}},
        "db": {"image": "busybox", "networks": {"back": {"aliases": ["database"]}}},
    },
    "networks": {"front": None, "back": {"ipam": {"config": [{"subnet": "172.30.0.0/24"}]}}},
}


def _node(name: str, address: str) -> Node:
    return Node(metadata=ObjectMeta(name=name),
                status=NodeStatus(ready=True, address=address,
                                  last_heartbeat=rfc3339(datetime.now(UTC))))


async def _networks(store: ObjectStore) -> dict[str, Network]:
    nets, _ = await store.list(NETWORK)
    return {n.metadata.name: n for n in nets}


async def _registry(store: ObjectStore) -> dict[str, Any]:
    kv = await store.kv.get(IPAM_NETWORKS_KEY)
    return json.loads(kv.value) if kv is not None else {}


async def test_app_networks_slices_endpoints_and_cleanup(controller: RunningController) -> None:
    store = controller.store
    for name, address in NODES.items():
        await store.create(_node(name, address))
    async with controller.client() as api:
        await api.apply(TODO, source="todo.yml")

        async def ready() -> dict[str, Network] | None:
            nets = await _networks(store)
            ok = set(nets) == {"todo_front", "todo_back"} and all(
                n.status.ready and set(n.status.nodes) == set(NODES) for n in nets.values())
            return nets if ok else None

        nets = await wait_for(ready, "two ready networks with a slice on every node")
        front, back = nets["todo_front"], nets["todo_back"]
        assert front.metadata.app == back.metadata.app == "todo"
        assert back.status.subnet == "172.30.0.0/24"  # as requested
        assert front.status.subnet == "10.128.0.0/20"  # the pool's first /20
        assert not IPv4Network(front.status.subnet).overlaps(IPv4Network(back.status.subnet))
        assert front.status.vni != back.status.vni and min(
            front.status.vni, back.status.vni) >= 4096
        for net in (front, back):
            subnet = IPv4Network(net.status.subnet)
            slices = [IPv4Network(nn.subnet) for nn in net.status.nodes.values()]
            assert all(s.subnet_of(subnet) for s in slices)
            assert len(set(slices)) == len(NODES)
            assert {n: nn.vtep for n, nn in net.status.nodes.items()} == NODES
        assert {s.prefixlen for s in (IPv4Network(nn.subnet)
                                      for nn in back.status.nodes.values())} == {28}
        assert await _registry(store) == {
            "todo_back": {"subnet": back.status.subnet, "vni": back.status.vni},
            "todo_front": {"subnet": front.status.subnet, "vni": front.status.vni}}

        # The service says which cluster networks its replicas join.
        web = await api.get(SERVICE, "web", "todo")
        assert sorted(web["spec"]["networks"]) == ["todo_back", "todo_front"]

        # A replica (as its agent would) reports running with its addresses.
        async def bound() -> list[Any] | None:
            tasks, _ = await store.list(TASK, app="todo")
            web_tasks = [t for t in tasks if t.spec.service == "web" and t.spec.node_name]
            return web_tasks if len(web_tasks) == 2 else None

        task = (await wait_for(bound, "web's replicas bound"))[0]
        slice_of = IPv4Network(front.status.nodes[task.spec.node_name].subnet)
        ip_front = str(slice_of.network_address + 2)
        ip_back = str(IPv4Network(back.status.nodes[task.spec.node_name].subnet)
                      .network_address + 2)
        await store.update(dataclasses.replace(task, status=dataclasses.replace(
            task.status, state="running", ip=ip_front,
            networks={"todo_front": ip_front, "todo_back": ip_back})))

        async def endpoints() -> Any:
            try:
                ep = await store.get(ENDPOINTS, "web", "todo")
            except NotFound:
                return None
            return ep if ep.addresses else None

        ep = await wait_for(endpoints, "web's endpoints to list the replica")
        assert ep.names == {"todo_back": ["web", "www"], "todo_front": ["web"]}
        assert [(p.target, p.published) for p in ep.ports] == [(80, 8080)]
        [addr] = ep.addresses
        assert addr.task == task.metadata.name and addr.ready
        assert addr.node == task.spec.node_name and addr.vtep == NODES[addr.node]
        assert addr.hostname == f"web-{task.spec.slot}"
        assert addr.addresses == {"todo_back": ip_back, "todo_front": ip_front}
        db_ep = await wait_for(lambda: _get_or_none(store, "db"), "db's endpoints")
        assert db_ep.names == {"todo_back": ["db", "database"]} and not db_ep.addresses

        # Delete the app; stop its replicas as their agents would.
        await api.delete(APP, "todo")

        async def all_stopped() -> bool:
            tasks, _ = await store.list(TASK, app="todo")
            for t in tasks:
                if t.spec.desired_state == "shutdown" and not t.terminal:
                    await store.update(dataclasses.replace(t, status=dataclasses.replace(
                        t.status, state="shutdown")))
            return not tasks

        await wait_for(all_stopped, "the app's tasks to be gone")
        await wait_for(lambda: _nothing_left(store), "networks and endpoints removed")
        await wait_for(lambda: _registry_is_empty(store), "registry entries freed")


async def test_requested_subnet_overlapping_another_network_is_not_ready(
        controller: RunningController) -> None:
    store = controller.store
    await store.create(Network(metadata=ObjectMeta(name="first"),
                               spec=NetworkSpec(name="first", ipam=_ipam("10.77.0.0/16"))))
    await store.create(Network(metadata=ObjectMeta(name="second"),
                               spec=NetworkSpec(name="second", ipam=_ipam("10.77.5.0/24"))))

    async def judged() -> dict[str, Network] | None:
        nets = await _networks(store)
        done = all(n.status.observed_generation for n in nets.values())
        return nets if len(nets) == 2 and done else None

    nets = await wait_for(judged, "both networks judged")
    ok, refused = sorted(nets.values(), key=lambda n: n.status.ready, reverse=True)
    assert ok.status.ready and ok.status.subnet
    assert not refused.status.ready and not refused.status.subnet
    other = ok.metadata.name
    assert f"overlaps network {other!r}" in refused.status.message
    assert set(await _registry(store)) == {other}

    # The winner goes: the other's subnet is now free, and it gets it.
    await store.delete(NETWORK, other)

    async def taken_over() -> bool:
        net = (await _networks(store)).get(refused.metadata.name)
        return bool(net and net.status.ready)

    await wait_for(taken_over, "the refused network to get its subnet once free")


def _ipam(subnet: str) -> Ipam:
    return Ipam(config=[IpamConfig(subnet=subnet)])


async def _get_or_none(store: ObjectStore, service: str) -> Any:
    try:
        return await store.get(ENDPOINTS, service, "todo")
    except NotFound:
        return None


async def _nothing_left(store: ObjectStore) -> bool:
    nets, _ = await store.list(NETWORK)
    eps, _ = await store.list(ENDPOINTS)
    return not nets and not eps


async def _registry_is_empty(store: ObjectStore) -> bool:
    return not await _registry(store)
