"""The pure parts of networking outside the manifest: how connect/disconnect edit an App,
and what the API's checks count as using or holding a network."""

from __future__ import annotations

import ipaddress

import pytest

from controller.api.network_checks import Cluster, app_clashes, subnet_clash, users_of
from skiff.cli.context import CliError
from skiff.cli.network_cmds import connect, disconnect
from skiff.manifest import load_document, load_text, to_compose
from skiff.models.appspec import NetworkSpec, ServiceNetwork, ServiceSpec
from skiff.models.codec import decode, encode
from skiff.models.objects import App, Network, NetworkStatus, ObjectMeta, Service

TODO = """name: todo
services:
  web: {image: x, networks: [front]}
  db: {image: x, networks: {back: {aliases: [sql]}}}
networks:
  front:
  back: {ipam: {config: [{subnet: 10.7.0.0/24}]}}
  shared: {external: true, name: common}
"""


def app(text: str = TODO) -> App:
    spec = load_text(text, "app.yml", None, environ={}).app
    return App(metadata=ObjectMeta(name=spec.name), spec=spec)


def as_json() -> dict:
    return encode(app())


def test_connect_adds_an_external_entry_for_a_network_the_app_does_not_own() -> None:
    doc = as_json()
    connect(doc, "web", "public", ["www", "www"])
    assert doc["spec"]["networks"]["public"] == {"name": "public", "external": True}
    assert doc["spec"]["services"]["web"]["networks"]["public"] == {"aliases": ["www"]}


def test_connect_uses_the_apps_own_key_for_its_networks() -> None:
    doc = as_json()
    connect(doc, "web", "todo_back", [])
    connect(doc, "web", "common", [])  # declared external under another key
    assert set(doc["spec"]["services"]["web"]["networks"]) == {"front", "back", "shared"}
    assert set(doc["spec"]["networks"]) == {"front", "back", "shared"}


def test_connect_picks_a_free_key_when_the_name_is_taken() -> None:
    doc = as_json()
    connect(doc, "web", "back", [])  # a standalone "back", not the app's todo_back
    assert doc["spec"]["networks"]["back_2"] == {"name": "back", "external": True}


def test_connect_again_only_adds_new_aliases() -> None:
    doc = as_json()
    connect(doc, "db", "todo_back", ["pg"])
    assert doc["spec"]["services"]["db"]["networks"]["back"]["aliases"] == ["sql", "pg"]
    with pytest.raises(CliError, match="already on network todo_back with those aliases"):
        connect(doc, "db", "todo_back", ["sql"])
    with pytest.raises(CliError, match="has no service 'api'"):
        connect(doc, "api", "todo_back", [])


def test_disconnect_drops_an_external_entry_nothing_uses() -> None:
    doc = as_json()
    connect(doc, "web", "public", [])
    disconnect(doc, "web", "public")
    assert "public" not in doc["spec"]["networks"]
    assert list(doc["spec"]["services"]["web"]["networks"]) == ["front"]
    with pytest.raises(CliError, match="only network of service todo/web"):
        disconnect(doc, "web", "todo_front")
    with pytest.raises(CliError, match="not on network todo_back"):
        disconnect(doc, "web", "todo_back")


def test_an_edited_app_still_loads() -> None:
    doc = as_json()
    connect(doc, "web", "public", ["www"])
    edited = decode(App, doc)
    loaded = load_document(to_compose(edited.spec)).app
    assert loaded.services["web"].networks["public"].aliases == ["www"]
    assert loaded.networks["public"].external


def test_users_of_tells_compose_keys_from_cluster_names() -> None:
    todo = app()
    # Not yet resolved by the reconciler: the key "back" means todo_back, not "back".
    svc = Service(metadata=ObjectMeta(name="db", app="todo"),
                  spec=ServiceSpec(image="x", networks={"back": ServiceNetwork()}))
    gone = Service(metadata=ObjectMeta(name="api", app="gone"),
                   spec=ServiceSpec(image="x", networks={"back": ServiceNetwork()}))
    cluster = Cluster(apps=[todo], services=[svc, gone])
    assert users_of("back", cluster) == ["gone/api"]
    assert users_of("todo_back", cluster) == ["todo/db"]
    assert users_of("common", cluster) == []


def test_holders_and_subnet_clashes() -> None:
    todo = app()
    net = Network(metadata=ObjectMeta(name="x_default", app="x"),
                  spec=NetworkSpec(name="x_default"),
                  status=NetworkStatus(subnet="10.128.0.0/20"))
    cluster = Cluster(apps=[todo], networks=[net], registry={"y": "10.128.16.0/20",
                                                             "bad": "nope"})
    assert {(h.network, h.app, str(h.subnet)) for h in cluster.holders()} == {
        ("todo_back", "todo", "10.7.0.0/24"), ("x_default", "x", "10.128.0.0/20"),
        ("y", None, "10.128.16.0/20")}
    net24 = ipaddress.ip_network("10.7.0.0/16")
    assert subnet_clash("todo_other", net24, "todo", cluster) is None  # its own app's
    assert "overlaps network todo_back (app todo, 10.7.0.0/24)" in (
        subnet_clash("s", net24, None, cluster) or "")


def test_an_app_clashing_with_nothing_passes() -> None:
    assert [c.message for c in app_clashes(app().spec, Cluster(networks=[Network(
        metadata=ObjectMeta(name="common"), spec=NetworkSpec(name="common"))]))] == []
    assert [c.message for c in app_clashes(app().spec, Cluster())] == [
        "network common declared as external, but could not be found"]
