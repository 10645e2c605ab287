from __future__ import annotations

import pytest

from controller.auth.tokens import Principal, TokenStore, new_token
from controller.store.memory import MemoryKV


async def test_issued_tokens_authenticate_and_others_do_not():
    tokens = TokenStore(MemoryKV())
    token = await tokens.create("admin", "admin")
    assert token.startswith("skf.")
    assert await tokens.authenticate(token) == Principal("admin", "admin")
    prefix, token_id, _secret = token.split(".")
    assert await tokens.authenticate(f"{prefix}.{token_id}.wrong") is None
    assert await tokens.authenticate(new_token()) is None
    for junk in ("", "skf", "skf..", "x.y.z", "skf.id.secret.extra", "skf.a/b.c"):
        assert await tokens.authenticate(junk) is None


async def test_secret_is_never_stored():
    kv = MemoryKV()
    token = await TokenStore(kv).create("admin", "admin")
    kvs, _ = await kv.range("/skiff/tokens/")
    assert len(kvs) == 1 and token.split(".")[2].encode() not in kvs[0].value


async def test_expired_token_is_refused():
    tokens = TokenStore(MemoryKV())
    token = await tokens.create("node", "n1", ttl_seconds=-1)
    assert await tokens.authenticate(token) is None


async def test_register_is_idempotent_and_rejects_malformed():
    tokens = TokenStore(MemoryKV())
    token = new_token()
    await tokens.register(token, "admin", "admin")
    await tokens.register(token, "admin", "admin")
    assert await tokens.authenticate(token) == Principal("admin", "admin")
    with pytest.raises(ValueError):
        await tokens.register("nope", "admin", "admin")
