"""The etcd key layout: every object has one key, and every key names one object."""

from __future__ import annotations

import pytest

from controller.store.keys import (
    LEADER_KEY,
    ROOT,
    TOKENS_PREFIX,
    kind_prefix,
    object_key,
    parse_key,
    validate_name,
)
from skiff.models.kinds import APP, KINDS, NODE, SERVICE, TASK


@pytest.mark.parametrize(("kind", "app", "name", "key"), [
    (APP, None, "hello", "/skiff/apps/hello"),
    (NODE, None, "n1.lab", "/skiff/nodes/n1.lab"),
    (SERVICE, "hello", "web", "/skiff/services/hello/web"),
    (TASK, "hello", "web.1.ab12", "/skiff/tasks/hello/web.1.ab12"),
])
def test_object_key_and_parse_key_round_trip(kind, app, name, key):
    assert object_key(kind, name, app) == key
    assert parse_key(key) == (kind, app, name)
    assert key.startswith(kind_prefix(kind, app))
    assert key.startswith(kind_prefix(kind))


def test_prefixes_end_in_a_slash_so_one_app_is_not_a_prefix_of_another():
    assert kind_prefix(TASK) == "/skiff/tasks/"
    assert kind_prefix(TASK, "web") == "/skiff/tasks/web/"
    assert not object_key(TASK, "x", "web2").startswith(kind_prefix(TASK, "web"))
    assert kind_prefix(APP) == "/skiff/apps/"


def test_every_kind_has_its_own_prefix_under_the_root():
    prefixes = [kind_prefix(k) for k in KINDS]
    assert len(set(prefixes)) == len(KINDS)
    for p in prefixes:
        assert p.startswith(ROOT)
        assert not any(p != q and q.startswith(p) for q in prefixes)


def test_non_object_keys_live_under_the_root_but_outside_every_kind():
    assert TOKENS_PREFIX == "/skiff/tokens/"
    assert LEADER_KEY == "/skiff/leader"
    for key in (TOKENS_PREFIX + "abc", LEADER_KEY):
        assert key.startswith(ROOT)
        assert not any(key.startswith(kind_prefix(k)) for k in KINDS)
        with pytest.raises(ValueError, match="not an object key"):
            parse_key(key)


@pytest.mark.parametrize(("name", "message"), [
    ("", "non-empty"),
    ("a/b", "must not contain '/'"),
    ("..", "must not contain '..'"),
    ("a..b", "must not contain '..'"),
    ("x" * 254, "at most 253"),
])
def test_bad_names_are_refused_with_the_reason(name, message):
    with pytest.raises(ValueError, match=message):
        object_key(APP, name)
    with pytest.raises(ValueError, match=message):
        object_key(TASK, "ok", app=name)


def test_longest_allowed_name_is_accepted():
    assert validate_name("x" * 253) == "x" * 253


def test_app_is_required_for_namespaced_kinds_and_refused_for_others():
    with pytest.raises(ValueError, match="app name is required"):
        object_key(SERVICE, "web")
    with pytest.raises(ValueError, match="do not belong to an app"):
        object_key(NODE, "n1", app="hello")
    with pytest.raises(ValueError, match="do not belong to an app"):
        kind_prefix(APP, "hello")


@pytest.mark.parametrize("key", [
    "/other/apps/x",
    "/skiff/widgets/x",
    "/skiff/apps/",
    "/skiff/apps/a/b",
    "/skiff/tasks/hello",
    "/skiff/tasks/hello/web/extra",
    "/skiff/tasks//web",
])
def test_parse_key_refuses_what_is_not_an_object_key(key):
    with pytest.raises(ValueError):
        parse_key(key)
