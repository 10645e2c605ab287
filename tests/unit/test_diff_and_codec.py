from __future__ import annotations

import pytest

from skiff.models.codec import DecodeError, decode, encode
from skiff.models.diff import diff
from skiff.models.objects import Task
from tests.unit.factories import service, task_of


def test_codec_round_trips_a_task():
    t = task_of(service(), 2, node="n1", state="running")
    assert decode(Task, encode(t)) == t
    assert encode(t)["metadata"]["resourceVersion"] == 30  # camelCase for API objects
    assert "cap_add" in encode(t)["spec"]["container"]  # compose names for the spec


@pytest.mark.parametrize("mutate, fragment", [
    (lambda d: d["spec"].__setitem__("slot", "one"), "spec.slot: expected an integer"),
    (lambda d: d["status"].__setitem__("state", "dancing"), "status.state: 'dancing' is not"),
    (lambda d: d["spec"].__setitem__("surprise", 1), "unknown field(s): surprise"),
    (lambda d: d["spec"].pop("service"), "spec.service: is required"),
])
def test_codec_names_the_bad_field(mutate, fragment):
    data = encode(task_of(service(), 1))
    mutate(data)
    with pytest.raises(DecodeError) as err:
        decode(Task, data)
    assert fragment in str(err.value)


def test_diff_reports_leaf_changes():
    old = {"a": 1, "b": {"c": [1, 2]}, "gone": "x"}
    new = {"a": 2, "b": {"c": [1, 3]}, "added": True}
    assert [str(c) for c in diff(old, new)] == [
        "a: 1 -> 2", "added: + True", "b.c[1]: 2 -> 3", "gone: - 'x'"]
    assert diff(new, new) == []
