"""A service's Endpoints from its tasks and nodes, without I/O."""

from __future__ import annotations

import dataclasses

from controller.reconcilers.endpoints_plan import (
    desired_endpoints,
    plan_endpoints,
    task_hostname,
)
from skiff.models.appspec import PortMapping, ServiceNetwork
from skiff.models.objects import EndpointAddress
from tests.unit.factories import service, spec, task_of

VTEPS = {"n1": "192.168.1.1", "n2": "192.168.1.2"}


def web():
    return service(service_spec=spec(
        networks={"hello_default": ServiceNetwork(),
                  "hello_back": ServiceNetwork(aliases=["api", "web", "api.internal"])},
        ports=[PortMapping(target=80, published=8080), PortMapping(target=9000),
               PortMapping(target=53, published=53, protocol="udp", mode="host")]))


def on(task, networks, state="running", desired="running"):
    status = dataclasses.replace(task.status, networks=networks, state=state)
    return dataclasses.replace(task, status=status, spec=dataclasses.replace(
        task.spec, desired_state=desired))


def test_names_ports_and_addresses():
    svc = web()
    t1 = on(task_of(svc, 1, node="n1"), {"hello_default": "10.128.0.2",
                                         "hello_back": "10.128.16.2"})
    t2 = on(task_of(svc, 2, node="n2"), {"hello_default": "10.128.0.66"}, state="starting")
    ep = desired_endpoints(svc, [t2, t1], VTEPS)
    assert ep.metadata.name == "web" and ep.metadata.app == "hello"
    assert ep.metadata.owner_uid == svc.metadata.uid
    assert ep.names == {"hello_back": ["web", "api", "api.internal"],
                        "hello_default": ["web"]}
    assert ep.ports == [PortMapping(target=80, published=8080),
                        PortMapping(target=53, published=53, protocol="udp", mode="host")]
    assert ep.addresses == [
        EndpointAddress(task=t1.metadata.name, node="n1", vtep="192.168.1.1",
                        hostname="web-1", ready=True,
                        addresses={"hello_back": "10.128.16.2", "hello_default": "10.128.0.2"}),
        EndpointAddress(task=t2.metadata.name, node="n2", vtep="192.168.1.2",
                        hostname="web-2", ready=False,
                        addresses={"hello_default": "10.128.0.66"}),
    ]


def test_tasks_without_addresses_or_ended_are_left_out_and_stopping_ones_not_ready():
    svc = web()
    pending = task_of(svc, 1)
    ended = on(task_of(svc, 2, node="n1"), {"hello_default": "10.128.0.3"}, state="failed")
    stopping = on(task_of(svc, 3, node="n1"), {"hello_default": "10.128.0.4"},
                  desired="shutdown")
    unknown_node = on(task_of(svc, 4, node="n9"), {"hello_default": "10.128.0.5"})
    ep = desired_endpoints(svc, [pending, ended, stopping, unknown_node], VTEPS)
    assert [(a.task, a.ready, a.vtep) for a in ep.addresses] == [
        (stopping.metadata.name, False, "192.168.1.1"),
        (unknown_node.metadata.name, True, "")]


def test_hostname_is_the_spec_hostname_or_service_and_slot_like_the_agent():
    svc = web()
    assert task_hostname(task_of(svc, 7)) == "web-7"
    named = service(service_spec=spec(hostname="db0"))
    assert task_hostname(task_of(named, 1)) == "db0"
    from agent.launch import hostname_of  # the rule mirrored; the test holds them together
    for t in (task_of(svc, 7), task_of(named, 1), task_of(service(name="Big"), 3)):
        assert task_hostname(t) == hostname_of(t)


def test_plan_creates_updates_only_on_change_and_deletes_with_the_service():
    svc = web()
    t1 = on(task_of(svc, 1, node="n1"), {"hello_default": "10.128.0.2"})
    plan = plan_endpoints(svc, [t1], VTEPS, None)
    assert plan.create is not None and plan.update is None and plan.delete is None
    stored = dataclasses.replace(plan.create, metadata=dataclasses.replace(
        plan.create.metadata, uid="ep-uid", resource_version=40))
    assert plan_endpoints(svc, [t1], VTEPS, stored) == type(plan)()
    # A task becomes ready: an update that keeps the stored metadata.
    t1_down = on(t1, t1.status.networks, state="starting")
    upd = plan_endpoints(svc, [t1_down], VTEPS, stored).update
    assert upd is not None and upd.metadata.resource_version == 40
    assert upd.metadata.uid == "ep-uid" and upd.addresses[0].ready is False
    # A node moves: the vtep follows.
    moved = plan_endpoints(svc, [t1], {"n1": "192.168.9.9"}, stored).update
    assert moved is not None and moved.addresses[0].vtep == "192.168.9.9"
    # The service is gone.
    assert plan_endpoints(None, [t1], VTEPS, stored).delete is stored
    assert plan_endpoints(None, [], VTEPS, None) == type(plan)()
