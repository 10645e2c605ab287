"""Who may do what, as one pure decision per request.

- ``admin``: everything.
- ``node`` (one per joined node, named after it): read the tasks bound to it (a list or
  watch must filter on its own node), report those tasks' status, register and
  heartbeat its own Node, hand over its own agent secret, and read (get, list, watch)
  every Network and Endpoints: its overlay, DNS and routing mesh span the cluster.
  It reads every Volume, and reports status of (and, once `skiff volume rm` asked,
  deletes) the volumes that live on it or that it is first to make. It records events
  about its own tasks and node.
  Nothing else: no apps, no services, no other node's tasks.
- ``join``: exchange itself for a node's credentials, nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from controller.auth.tokens import Principal

Verb = Literal["get", "list", "watch", "create", "update", "delete", "apply", "status",
               "secret", "join", "logs", "exec", "token", "event"]


# What every node reads whole: the networks it joins and the replicas it must reach.
_CLUSTER_READABLE = frozenset({"Network", "Endpoints"})


@dataclass(frozen=True)
class Access:
    verb: Verb
    kind: str  # "Task", "Node", "App", "Service", "Token", ...
    name: str | None = None  # the object's name (for nodes: the node)
    node: str | None = None  # for tasks: the node it is bound to, or the list filter


def allowed(principal: Principal, access: Access) -> bool:
    if principal.role == "admin":
        return True
    if principal.role == "join":
        return access.verb == "join"
    if principal.role != "node":
        return False
    me = principal.name
    if access.kind == "Task":
        return access.verb in ("get", "list", "watch", "status", "event") and \
            access.node == me
    if access.kind == "Node":
        return access.verb in ("get", "create", "status", "secret", "event") and \
            access.name == me
    if access.kind in _CLUSTER_READABLE:
        return access.verb in ("get", "list", "watch")
    if access.kind == "Volume":
        return access.verb in ("get", "list", "watch") or (
            access.verb in ("status", "delete") and access.node == me)
    return False


def denial(principal: Principal, access: Access) -> str:
    what = access.kind.lower() + (f" {access.name}" if access.name else "")
    if principal.role == "node" and access.kind == "Task" and access.verb in ("list", "watch"):
        return (f"node {principal.name} may only {access.verb} its own tasks "
                f"(filter node={principal.name})")
    return f"{principal.role} {principal.name} may not {access.verb} {what}"
