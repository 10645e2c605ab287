"""The node's own credential: got once by joining with a join token, kept in the agent's
state (0600) and used from then on, so a restarted agent needs no join token."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

from skiff.client.api import ApiClient, ApiError

log = logging.getLogger(__name__)


class JoinError(RuntimeError):
    pass


def _load(path: Path, server: str, name: str) -> str | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("server") == server and data.get("name") == name:
        return str(data["token"])
    return None


def _save(path: Path, server: str, name: str, token: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"server": server, "name": name, "token": token}, f)
    os.replace(tmp, path)


async def node_token(server: str, join_token: str, name: str, path: Path) -> str:
    """The saved credential if it still works, else a new one from joining."""
    saved = await asyncio.to_thread(_load, path, server, name)
    if saved is not None:
        async with ApiClient(server, saved) as api:
            try:
                await api.request("GET", f"/api/v1/nodes/{name}")
                return saved
            except ApiError as exc:
                if exc.code == "NotFound":
                    return saved  # valid credential; the Node is simply not registered yet
                if exc.status != 401:
                    raise JoinError(f"cannot check this node's credential: {exc.message}"
                                    ) from None
                log.warning("the saved credential of node %s was revoked; joining again",
                            name)
    async with ApiClient(server, join_token) as api:
        try:
            token = await api.join(name)
        except ApiError as exc:
            raise JoinError(f"cannot join {server} as {name}: {exc.message}") from None
    await asyncio.to_thread(_save, path, server, name, token)
    return token
