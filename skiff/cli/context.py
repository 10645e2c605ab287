"""What every CLI command shares: the resolved server and token, and the exit codes."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from skiff.client.api import ApiClient
from skiff.client.config import ClientConfig, load_config

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


class CliError(Exception):
    """An error the user can act on: printed without a traceback, exit code 1."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def resolve(args: argparse.Namespace) -> ClientConfig:
    """Flags beat environment variables beat the config file."""
    path = Path(args.config) if getattr(args, "config", None) else None
    cfg = load_config(path)
    server = args.server or os.environ.get("SKIFF_SERVER") or cfg.server
    token = args.token or os.environ.get("SKIFF_TOKEN") or cfg.token
    return ClientConfig(server=server, token=token)


def client(args: argparse.Namespace) -> ApiClient:
    cfg = resolve(args)
    if not cfg.token:
        raise CliError("no token: run `skiff up`, or pass --token / set SKIFF_TOKEN")
    return ApiClient(cfg.server, cfg.token)
