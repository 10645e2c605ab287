"""The authorisation table: admins do anything; a node only its own things."""

from __future__ import annotations

import pytest

from controller.auth.policy import Access, allowed
from controller.auth.tokens import Principal

ADMIN = Principal("admin", "admin")
N1 = Principal("node", "n1")
JOIN = Principal("join", "join")


@pytest.mark.parametrize("principal, access, ok", [
    (ADMIN, Access("apply", "App"), True),
    (ADMIN, Access("delete", "Node", "n2"), True),
    (N1, Access("list", "Task", node="n1"), True),
    (N1, Access("watch", "Task", node="n1"), True),
    (N1, Access("list", "Task"), False),                  # no filter: every node's tasks
    (N1, Access("list", "Task", node="n2"), False),
    (N1, Access("get", "Task", "web.1.x", node="n1"), True),
    (N1, Access("get", "Task", "web.1.y", node="n2"), False),
    (N1, Access("status", "Task", "web.1.x", node="n1"), True),
    (N1, Access("status", "Task", "web.1.y", node="n2"), False),
    (N1, Access("update", "Task", "web.1.x", node="n1"), False),
    (N1, Access("get", "Service", "web"), False),
    (N1, Access("update", "Service", "web"), False),
    (N1, Access("delete", "App", "hello"), False),
    (N1, Access("apply", "App"), False),
    (N1, Access("create", "Node", "n1"), True),
    (N1, Access("create", "Node", "n2"), False),
    (N1, Access("status", "Node", "n1"), True),
    (N1, Access("status", "Node", "n2"), False),
    (N1, Access("update", "Node", "n1"), False),           # labels, cordon: the admin's
    (N1, Access("list", "Node"), False),
    (N1, Access("token", "Token"), False),
    (N1, Access("join", "Node", "n9"), False),
    (JOIN, Access("join", "Node", "n9"), True),
    (JOIN, Access("list", "Task", node="n9"), False),
    (JOIN, Access("get", "Node", "n9"), False),
])
def test_policy(principal, access, ok):
    assert allowed(principal, access) is ok
