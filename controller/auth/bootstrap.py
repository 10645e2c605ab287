"""The first admin token: made on first start, kept in a 0600 file, registered in etcd."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from controller.auth.tokens import TokenStore, new_token


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def _read_or_make(path: Path) -> tuple[str, bool]:
    try:
        return path.read_text().strip(), False
    except FileNotFoundError:
        token = new_token()
        _write_secret(path, token)
        return token, True


async def ensure_admin_token(tokens: TokenStore, path: Path) -> tuple[str, bool]:
    """The admin token, and whether it was made just now."""
    token, created = await asyncio.to_thread(_read_or_make, path)
    # Registering is idempotent, so a fresh etcd under an old state dir still accepts it.
    await tokens.register(token, "admin", "admin")
    return token, created


async def ensure_join_token(tokens: TokenStore, path: Path) -> str:
    """The cluster's first join token: no expiry (like k3s's node token), kept beside the
    admin token; `skiff token create` makes expiring ones."""
    token, _created = await asyncio.to_thread(_read_or_make, path)
    await tokens.register(token, "join", "join")
    return token
