"""deploy.mode and deploy.placement: what they load into, how they print, and that
neither changes the container hash. (Bad values: test_manifest_errors.py.)"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from skiff.manifest import load_document, load_text, to_compose
from skiff.manifest.placement import parse_constraint
from skiff.models.appspec import Constraint, Deploy, Placement, Preference, ServiceSpec

ROOT = Path(__file__).resolve().parents[2]


def service(body: str) -> ServiceSpec:
    text = "name: app\nservices:\n  web:\n    image: busybox\n"
    text += textwrap.indent(textwrap.dedent(body).strip("\n") + "\n", "    ")
    return load_text(text, "app.yml", None, environ={}).app.services["web"]


def test_defaults_are_replicated_with_no_placement() -> None:
    deploy = service("labels: {a: b}").deploy
    assert deploy.mode == "replicated"
    assert deploy.placement == Placement()


def test_placement_loads_into_parsed_values() -> None:
    web = service("""
        deploy:
          replicas: 6
          placement:
            constraints:
              - node.labels.disk == ssd
              - node.hostname!=n3
              - node.name==n1
              - node.name==n1
            preferences:
              - spread: node.labels.zone
              - spread: node.labels.rack
            max_replicas_per_node: "2"
    """)
    assert web.deploy.placement == Placement(
        constraints=[Constraint("node.labels.disk", "==", "ssd"),
                     Constraint("node.hostname", "!=", "n3"),
                     Constraint("node.name", "==", "n1")],  # the repeat is dropped
        preferences=[Preference("node.labels.zone"), Preference("node.labels.rack")],
        max_replicas_per_node=2)
    assert web.deploy.placement.constraints[0].label == "disk"
    assert web.deploy.placement.preferences[1].label == "rack"


@pytest.mark.parametrize("text, expected", [
    ("node.labels.disk==ssd", Constraint("node.labels.disk", "==", "ssd")),
    ("  node.labels.com.example.tier !=  web ", Constraint("node.labels.com.example.tier",
                                                           "!=", "web")),
    ("node.hostname==lab-1.local", Constraint("node.hostname", "==", "lab-1.local")),
    ("node.labels.k==a==b", Constraint("node.labels.k", "==", "a==b")),
])
def test_constraint_syntax(text: str, expected: Constraint) -> None:
    assert parse_constraint(text) == expected
    assert parse_constraint(str(expected)) == expected


def test_global_mode() -> None:
    web = service("deploy: {mode: global, placement: {constraints: [node.labels.edge==1]}}")
    assert web.deploy.mode == "global"
    assert web.deploy.placement.constraints == [Constraint("node.labels.edge", "==", "1")]


def _doc(deploy: dict[str, Any]) -> dict[str, Any]:
    return {"name": "app", "services": {"web": {"image": "x", "deploy": deploy}}}


@pytest.mark.parametrize("deploy, printed", [
    ({"replicas": 2}, {"replicas": 2}),
    ({"mode": "replicated"}, {"replicas": 1}),
    ({"mode": "global"}, {"mode": "global"}),
    ({"placement": {"constraints": ["node.labels.disk == ssd"],
                    "preferences": [{"spread": "node.labels.zone"}],
                    "max_replicas_per_node": 3}},
     {"replicas": 1, "placement": {"constraints": ["node.labels.disk==ssd"],
                                   "preferences": [{"spread": "node.labels.zone"}],
                                   "max_replicas_per_node": 3}}),
    ({"mode": "global", "placement": {"constraints": ["node.name!=a"]}},
     {"mode": "global", "placement": {"constraints": ["node.name!=a"]}}),
])
def test_to_compose_prints_compose_keys_and_loads_back(deploy: dict[str, Any],
                                                       printed: dict[str, Any]) -> None:
    app = load_document(_doc(deploy)).app
    doc = to_compose(app)
    assert doc["services"]["web"]["deploy"] == printed
    assert load_document(json.loads(json.dumps(doc))).app == app
    schema = json.loads((ROOT / "schemas" / "manifest.schema.json").read_text())
    jsonschema.validate(doc, schema)


def test_placement_and_mode_do_not_change_the_container_hash() -> None:
    base = ServiceSpec(image="busybox", deploy=Deploy(replicas=2))
    moved = dataclasses.replace(base, deploy=Deploy(
        replicas=5, mode="global", placement=Placement(
            constraints=[Constraint("node.labels.disk", "==", "ssd")],
            preferences=[Preference("node.labels.zone")], max_replicas_per_node=1)))
    assert moved.container_hash() == base.container_hash()
    # What does shape the container still counts.
    assert dataclasses.replace(base, image="busybox:2").container_hash() != \
        base.container_hash()
