"""The CLI's config file: where the controller is and the token to reach it.

``$SKIFF_CONFIG`` or ``~/.config/skiff/config``; YAML with ``server`` and ``token``.
It holds a secret, so it is written with mode 0600 and never loosened.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_SERVER = "http://127.0.0.1:7480"


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class ClientConfig:
    server: str = DEFAULT_SERVER
    token: str | None = None


def default_config_path() -> Path:
    env = os.environ.get("SKIFF_CONFIG")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "skiff" / "config"


def load_config(path: Path | None = None) -> ClientConfig:
    path = path or default_config_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return ClientConfig()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with server and token")
    server, token = data.get("server", DEFAULT_SERVER), data.get("token")
    if not isinstance(server, str) or not (token is None or isinstance(token, str)):
        raise ConfigError(f"{path}: server and token must be strings")
    return ClientConfig(server=server, token=token)


def write_config(config: ClientConfig, path: Path | None = None) -> Path:
    path = path or default_config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = yaml.safe_dump({"server": config.server, "token": config.token})
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path
