"""App → Networks plan and services keyed by cluster network names, without I/O."""

from __future__ import annotations

import dataclasses

from controller.reconcilers.app_networks import desired_networks, plan_networks
from controller.reconcilers.app_plan import desired_service, plan_app
from skiff.models.appspec import AppSpec, NetworkSpec, ServiceNetwork
from skiff.models.objects import App, Network, ObjectMeta
from tests.unit.factories import spec


def todo(uid: str = "app-uid", **networks: NetworkSpec) -> App:
    nets = networks or {"default": NetworkSpec(name="todo_default"),
                        "back": NetworkSpec(name="todo_back", internal=True),
                        "shared": NetworkSpec(name="shared", external=True)}
    web = spec(networks={"default": ServiceNetwork(aliases=["www"]),
                         "back": ServiceNetwork(), "shared": ServiceNetwork()})
    return App(metadata=ObjectMeta(name="todo", uid=uid, generation=1, resource_version=10),
               spec=AppSpec(name="todo", services={"web": web}, networks=nets))


def stored(net: Network, rv: int = 50) -> Network:
    return dataclasses.replace(net, metadata=dataclasses.replace(
        net.metadata, uid=f"uid-{net.metadata.name}", generation=1, resource_version=rv))


def never(_name: str) -> bool:
    return False


def test_non_external_networks_become_owned_network_objects():
    nets = desired_networks(todo())
    assert sorted(nets) == ["todo_back", "todo_default"]
    back = nets["todo_back"]
    assert back.metadata.app == "todo" and back.metadata.owner_uid == "app-uid"
    assert back.metadata.labels == {"skiff.app": "todo"}
    assert back.spec == NetworkSpec(name="todo_back", internal=True)
    plan = plan_networks("todo", todo(), {}, never)
    assert [n.metadata.name for n in plan.create] == ["todo_back", "todo_default"]
    assert not plan.update and not plan.delete


def test_unchanged_networks_plan_nothing_and_a_changed_spec_bumps_generation():
    have = {n: stored(x) for n, x in desired_networks(todo()).items()}
    assert plan_networks("todo", todo(), have, never).empty
    changed = todo(default=NetworkSpec(name="todo_default", labels={"a": "b"}),
                   back=NetworkSpec(name="todo_back", internal=True))
    plan = plan_networks("todo", changed, have, never)
    assert [n.metadata.name for n in plan.update] == ["todo_default"]
    assert plan.update[0].metadata.generation == 2
    assert plan.update[0].metadata.uid == "uid-todo_default"


def test_a_recreated_app_adopts_its_networks():
    have = {n: stored(x) for n, x in desired_networks(todo(uid="old")).items()}
    plan = plan_networks("todo", todo(uid="new"), have, never)
    assert {n.metadata.owner_uid for n in plan.update} == {"new"}
    assert {n.metadata.generation for n in plan.update} == {1}
    assert not plan.create and not plan.delete


def test_someone_elses_network_of_the_same_name_is_used_not_touched():
    mine = todo(default=NetworkSpec(name="common"))
    theirs = stored(Network(metadata=ObjectMeta(name="common", app="other"),
                            spec=NetworkSpec(name="common", internal=True)))
    plain = stored(Network(metadata=ObjectMeta(name="common"), spec=NetworkSpec(name="common")))
    assert plan_networks("todo", mine, {"common": theirs}, never).empty
    assert plan_networks("todo", mine, {"common": plain}, never).empty


def test_unwanted_networks_go_once_nothing_uses_them():
    have = {n: stored(x) for n, x in desired_networks(todo()).items()}
    assert plan_networks("todo", None, have, lambda n: True).empty
    plan = plan_networks("todo", None, have, lambda n: n == "todo_back")
    assert [n.metadata.name for n in plan.delete] == ["todo_default"]
    only_default = todo(default=NetworkSpec(name="todo_default"))
    plan = plan_networks("todo", only_default, have, never)
    assert [n.metadata.name for n in plan.delete] == ["todo_back"]


def test_service_networks_are_keyed_by_cluster_name():
    svc = desired_service(todo(), "web")
    assert svc.spec.networks == {"shared": ServiceNetwork(),
                                 "todo_back": ServiceNetwork(),
                                 "todo_default": ServiceNetwork(aliases=["www"])}
    assert list(svc.spec.networks) == ["shared", "todo_back", "todo_default"]


def test_default_without_a_top_level_entry_and_two_keys_naming_one_network():
    a = todo(one=NetworkSpec(name="same"), two=NetworkSpec(name="same"))
    web = spec(networks={"default": ServiceNetwork(),
                         "one": ServiceNetwork(aliases=["a"], ipv4_address="10.0.0.9"),
                         "two": ServiceNetwork(aliases=["b", "a"])})
    a = dataclasses.replace(a, spec=dataclasses.replace(a.spec, services={"web": web}))
    assert desired_service(a, "web").spec.networks == {
        "same": ServiceNetwork(aliases=["a", "b"], ipv4_address="10.0.0.9"),
        "todo_default": ServiceNetwork()}


def test_a_service_stored_with_compose_keys_is_updated_to_cluster_names():
    a = todo()
    old = desired_service(a, "web")
    old = dataclasses.replace(old, spec=a.spec.services["web"], metadata=dataclasses.replace(
        old.metadata, generation=1, resource_version=5))
    plan = plan_app(a, [old])
    assert len(plan.update) == 1 and "todo_default" in plan.update[0].spec.networks
