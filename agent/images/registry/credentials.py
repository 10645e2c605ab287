"""Registry credentials on disk, in docker's config.json shape:

    {"auths": {"10.0.0.1:5000": {"auth": "<base64 user:password>"}}}

The file holds passwords, so it is created 0600 from the first byte (os.open with the
mode, never chmod after the fact) in a 0700 directory, and replaced by rename, so a
reader never sees a half-written file and the mode never widens.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.images.registry.endpoint import normalise_registry
from agent.images.registry.errors import RegistryError


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # keep passwords out of logs and tracebacks
        return f"Credentials(username={self.username!r}, password=***)"


class AuthFile:
    """Credentials per registry in `path`. Every call reads or writes the file afresh:
    `skiff login` in one shell is seen by the next command in another."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise RegistryError(f"cannot read registry credentials {self.path}: {exc}") \
                from None
        return data if isinstance(data, dict) else {}

    def get(self, registry: str) -> Credentials | None:
        entry = (self._read().get("auths") or {}).get(normalise_registry(registry))
        if not isinstance(entry, dict) or not isinstance(entry.get("auth"), str):
            return None
        try:
            user, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return Credentials(user, password) if sep else None

    def set(self, registry: str, creds: Credentials) -> None:
        data = self._read()
        auths = data.setdefault("auths", {})
        token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        auths[normalise_registry(registry)] = {"auth": token}
        self._write(data)

    def remove(self, registry: str) -> bool:
        data = self._read()
        auths = data.get("auths") or {}
        if auths.pop(normalise_registry(registry), None) is None:
            return False
        self._write(data)
        return True

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1, sort_keys=True)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
