"""App → Services plan and the apply diff, without I/O."""

from __future__ import annotations

import dataclasses

from controller.apply import plan_changes
from controller.reconcilers.app_plan import desired_service, plan_app
from skiff.models.appspec import AppSpec
from tests.unit.factories import app, service, spec


def test_new_app_creates_every_service_in_name_order():
    a = app(web=spec(), db=spec(image="postgres"))
    plan = plan_app(a, [])
    assert [s.metadata.name for s in plan.create] == ["db", "web"]
    assert plan.create[0].metadata.owner_uid == a.metadata.uid
    assert plan.create[0].metadata.app == "hello"


def test_unchanged_app_plans_nothing():
    a = app()
    have = dataclasses.replace(desired_service(a, "web"), metadata=dataclasses.replace(
        desired_service(a, "web").metadata, generation=1, resource_version=5))
    assert plan_app(a, [have]).empty


def test_changed_service_spec_bumps_generation():
    a = app(web=spec(replicas=5))
    have = service(service_spec=spec(replicas=3), generation=4)
    plan = plan_app(a, [have])
    assert len(plan.update) == 1
    assert plan.update[0].spec.replicas == 5
    assert plan.update[0].metadata.generation == 5


def test_removed_service_is_deleted_and_gone_app_deletes_all():
    a = app(web=spec())
    extra = service(name="old")
    web = service()
    assert [s.metadata.name for s in plan_app(a, [web, extra]).delete] == ["old"]
    assert [s.metadata.name for s in plan_app(None, [web, extra]).delete] == ["old", "web"]


def test_service_of_a_previous_app_instance_is_replaced():
    a = app(uid="second")
    stale = service(owner="first")
    plan = plan_app(a, [stale])
    assert plan.delete == [stale] and not plan.create


def test_plan_changes_reports_fields_and_actions():
    old = AppSpec(name="hello", services={"web": spec(replicas=3), "gone": spec()})
    new = AppSpec(name="hello", services={"web": spec(replicas=5), "db": spec()})
    changes, other = plan_changes(old, new)
    by_name = {c.name: c for c in changes}
    assert by_name["db"].action == "create"
    assert by_name["gone"].action == "delete"
    assert by_name["web"].action == "update"
    assert by_name["web"].changes == ["deploy.replicas: 3 -> 5"]
    assert other == []
    same, _ = plan_changes(new, new)
    assert {c.action for c in same} == {"unchanged"}
