"""Who may do what. Admin tokens may do everything; node tokens get their scope later."""

from __future__ import annotations

from typing import Literal

from controller.auth.tokens import Principal

Verb = Literal["get", "list", "watch", "create", "update", "delete", "apply"]


def allowed(principal: Principal, verb: Verb, kind: str) -> bool:
    return principal.role == "admin"
