"""Nodes read every Network and Endpoints (their overlay, DNS and mesh span the cluster),
and may do nothing else with them."""

from __future__ import annotations

import pytest

from controller.auth.policy import Access, allowed
from controller.auth.tokens import Principal

N1 = Principal("node", "n1")
JOIN = Principal("join", "join")
ADMIN = Principal("admin", "admin")


@pytest.mark.parametrize("kind", ["Network", "Endpoints"])
@pytest.mark.parametrize(("verb", "ok"), [
    ("get", True), ("list", True), ("watch", True),
    ("create", False), ("update", False), ("delete", False), ("status", False),
    ("apply", False),
])
def test_a_node_reads_networks_and_endpoints_only(kind, verb, ok):
    assert allowed(N1, Access(verb, kind, "todo_default")) is ok
    assert allowed(N1, Access(verb, kind)) is ok  # lists carry no name or node filter
    assert allowed(N1, Access(verb, kind, node="n2")) is ok  # not limited to its own


@pytest.mark.parametrize("kind", ["Network", "Endpoints"])
def test_join_tokens_read_nothing_and_admins_everything(kind):
    assert not allowed(JOIN, Access("list", kind))
    assert allowed(ADMIN, Access("delete", kind, "x"))


def test_nodes_still_read_no_apps_or_services():
    assert not allowed(N1, Access("list", "Service"))
    assert not allowed(N1, Access("get", "App", "todo"))
