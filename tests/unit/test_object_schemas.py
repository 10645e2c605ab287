"""The published object schemas match the models, and real objects validate."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from skiff.models.codec import encode
from skiff.models.schema_gen import render_all
from tests.unit.factories import app, node, service, task_of

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "objects"


def test_committed_schemas_match_the_models():
    for name, text in render_all().items():
        committed = (SCHEMAS / name).read_text()
        assert committed == text, (
            f"schemas/objects/{name} is stale: run python -m skiff.models.schema_gen")


def test_encoded_objects_validate_and_bad_ones_do_not():
    samples = {"app": app(), "service": service(), "task": task_of(service(), 1),
               "node": node("n1")}
    for name, obj in samples.items():
        schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
        data = encode(obj)
        jsonschema.validate(data, schema)
        data["metadata"]["surprise"] = 1
        try:
            jsonschema.validate(data, schema)
        except jsonschema.ValidationError:
            continue
        raise AssertionError(f"{name}: an unknown metadata field passed validation")
