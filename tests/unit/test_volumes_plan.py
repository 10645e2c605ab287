"""Volumes, the pure parts: which Volumes an app makes (and never deletes), tasks naming
volumes by cluster name, the apply-time checks, and who may touch a Volume."""

from __future__ import annotations

import dataclasses

from controller.api.volume_checks import sensitive, volume_problems
from controller.api.volume_routes import volume_users
from controller.auth.policy import Access, allowed
from controller.auth.tokens import Principal
from controller.reconcilers.app_plan import desired_service
from controller.reconcilers.app_volumes import desired_volumes, plan_volumes
from skiff.manifest import load_text
from skiff.models.appspec import AppSpec
from skiff.models.objects import App, ObjectMeta, VolumeSpec
from tests.unit.factories import task_of
from tests.unit.scheduling import svc

MANIFEST = """\
name: shop
services:
  db:
    image: busybox
    volumes: [data:/var/lib/db, shared:/shared, cache:/cache, /srv/code:/code]
volumes:
  data:
    labels: {tier: db}
  shared:
    external: true
  cache:
    name: shop-cache
"""


def app_spec(text: str = MANIFEST) -> AppSpec:
    return load_text(text, "app.yml", None, environ={}).app


def app(uid: str = "u1") -> App:
    return App(metadata=ObjectMeta(name="shop", uid=uid), spec=app_spec())


def test_an_app_makes_its_volumes_by_cluster_name_except_external_ones() -> None:
    want = desired_volumes(app())
    assert sorted(want) == ["shop-cache", "shop_data"]
    data = want["shop_data"]
    assert data.metadata.app == "shop" and data.metadata.owner_uid == "u1"
    assert data.metadata.labels == {"tier": "db", "skiff.app": "shop"}
    assert data.spec == VolumeSpec(driver="local")


def test_volumes_are_made_once_adopted_by_a_new_app_and_never_deleted() -> None:
    plan = plan_volumes("shop", app(), {})
    assert sorted(v.metadata.name for v in plan.create) == ["shop-cache", "shop_data"]
    stored = {v.metadata.name: dataclasses.replace(
        v, spec=dataclasses.replace(v.spec, node="n2")) for v in plan.create}
    assert plan_volumes("shop", app(), stored).empty
    adopted = plan_volumes("shop", app(uid="u2"), stored)
    assert [v.metadata.owner_uid for v in adopted.update] == ["u2", "u2"]
    assert all(v.spec.node == "n2" for v in adopted.update)  # the data stays put
    assert plan_volumes("shop", None, stored).empty  # the app gone: volumes kept
    mine = dataclasses.replace(stored["shop_data"], metadata=dataclasses.replace(
        stored["shop_data"].metadata, app="other"))
    assert plan_volumes("shop", app(uid="u2"), {"shop_data": mine}).update == []


def test_tasks_name_volumes_by_cluster_name() -> None:
    mounts = desired_service(app(), "db").spec.volumes
    assert [(m.type, m.source) for m in mounts] == [
        ("volume", "shop_data"), ("volume", "shared"), ("volume", "shop-cache"),
        ("bind", "/srv/code")]


def test_external_volumes_must_exist_and_bind_prefixes_are_enforced() -> None:
    spec = app_spec()
    clashes, warnings = volume_problems(spec, set(), ())
    assert [(c.path, c.missing) for c in clashes] == [("volumes.shared", True)]
    assert "external volume shared does not exist" in clashes[0].message
    assert warnings == []
    clashes, _ = volume_problems(spec, {"shared"}, ("/home", "/srv/other"))
    assert [c.path for c in clashes] == ["services.db.volumes[3]"]
    assert "outside the allowed bind prefixes of this cluster: /home, /srv/other" in \
        clashes[0].message
    assert volume_problems(spec, {"shared"}, ("/srv",))[0] == []
    assert volume_problems(spec, {"shared"}, ("/",))[0] == []


def test_sensitive_host_folders_draw_a_warning() -> None:
    spec = app_spec("name: x\nservices:\n  a:\n    image: busybox\n"
                    "    volumes: [/etc/ssl:/ssl, /:/host, /var/run:/run, /srv/etc:/e]\n")
    _, warnings = volume_problems(spec, set(), ())
    assert [w.split(":")[0] for w in warnings] == [
        "services.a.volumes[0]", "services.a.volumes[1]", "services.a.volumes[2]"]
    assert "exposes the host's /etc" in warnings[0]
    assert "exposes the host's root" in warnings[1]
    assert sensitive("/etcetera") is None and sensitive("/proc/1") == "/proc"


def test_users_of_a_volume_are_services_and_live_tasks() -> None:
    db = svc("db", volumes=["shop_data"])
    service = dataclasses.replace(db, metadata=dataclasses.replace(db.metadata, app="shop"))
    live = task_of(db, 1, node="n1")
    ended = task_of(db, 2, node="n1", state="complete")
    assert volume_users("shop_data", [service], [live, ended]) == [
        "service shop/db", f"task hello/{live.metadata.name}"]
    assert volume_users("other", [service], [live]) == []


def test_nodes_touch_only_their_own_volumes() -> None:
    n1 = Principal(role="node", name="n1")
    assert allowed(n1, Access("list", "Volume"))
    assert allowed(n1, Access("status", "Volume", "v", node="n1"))
    assert not allowed(n1, Access("status", "Volume", "v", node="n2"))
    assert allowed(n1, Access("delete", "Volume", "v", node="n1"))
    assert not allowed(n1, Access("delete", "Volume", "v", node=None))
    assert not allowed(n1, Access("create", "Volume"))
