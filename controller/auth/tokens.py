"""Bearer tokens: ``skf.<id>.<secret>``; etcd keeps only a hash of the secret.

The id finds the record, the secret proves possession. Roles: ``admin`` may do
everything; ``node`` is one node's credential (see policy.py); ``join`` only trades
itself for a node credential. A node's name is claimed atomically when it joins, so two
agents can never hold one name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from controller.store.keys import NODE_CLAIMS_PREFIX, TOKENS_PREFIX
from controller.store.kv import Compare, Delete, KVStore, Put

Role = Literal["admin", "node", "join"]
_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Principal:
    role: Role
    name: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token() -> str:
    return f"skf.{secrets.token_hex(6)}.{secrets.token_urlsafe(24)}"


def _split(token: str) -> tuple[str, str] | None:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != "skf" or not parts[1].isalnum() or not parts[2]:
        return None
    return parts[1], parts[2]


class TokenStore:
    def __init__(self, kv: KVStore) -> None:
        self.kv = kv
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def register(self, token: str, role: Role, name: str,
                       ttl_seconds: float | None = None) -> None:
        """Store a token's hash (idempotent for a token already stored)."""
        split = _split(token)
        if split is None:
            raise ValueError("malformed token: expected skf.<id>.<secret>")
        token_id, secret = split
        record = {"hash": _hash(secret), "role": role, "name": name,
                  "expiresAt": time.time() + ttl_seconds if ttl_seconds else None}
        await self.kv.txn([Compare(TOKENS_PREFIX + token_id, 0)],
                          [Put(TOKENS_PREFIX + token_id, json.dumps(record).encode())])

    async def create(self, role: Role, name: str, ttl_seconds: float | None = None) -> str:
        token = new_token()
        await self.register(token, role, name, ttl_seconds)
        return token

    async def issue_node_credential(self, node: str) -> str | None:
        """A token for ``node`` and the claim on its name, in one transaction; None if
        another agent holds the name already."""
        token = new_token()
        token_id, secret = token.split(".")[1:]
        record = {"hash": _hash(secret), "role": "node", "name": node, "expiresAt": None}
        result = await self.kv.txn(
            [Compare(NODE_CLAIMS_PREFIX + node, 0), Compare(TOKENS_PREFIX + token_id, 0)],
            [Put(TOKENS_PREFIX + token_id, json.dumps(record).encode()),
             Put(NODE_CLAIMS_PREFIX + node, token_id.encode())])
        return token if result.succeeded else None

    async def release_node(self, node: str) -> None:
        """Revoke a node's credential and free its name (``skiff node rm``)."""
        claim = await self.kv.get(NODE_CLAIMS_PREFIX + node)
        ops: list[Put | Delete] = [Delete(NODE_CLAIMS_PREFIX + node)]
        if claim is not None:
            ops.append(Delete(TOKENS_PREFIX + claim.value.decode()))
        await self.kv.txn([], ops)
        self._cache = {t: (exp, p) for t, (exp, p) in self._cache.items()
                       if not (p.role == "node" and p.name == node)}

    async def authenticate(self, token: str) -> Principal | None:
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached and cached[0] > now:
            return cached[1]
        split = _split(token)
        if split is None:
            return None
        token_id, secret = split
        kv = await self.kv.get(TOKENS_PREFIX + token_id)
        if kv is None:
            return None
        try:
            record = json.loads(kv.value)
            ok = hmac.compare_digest(record["hash"], _hash(secret))
            expires = record.get("expiresAt")
            principal = Principal(role=record["role"], name=record["name"])
        except (ValueError, KeyError, TypeError):
            return None
        if not ok or (expires is not None and expires < time.time()):
            return None
        self._cache[token] = (now + _CACHE_SECONDS, principal)
        return principal
