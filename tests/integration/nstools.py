"""Small tools the namespace-based tests share: run a command, find namespaces by prefix."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

NETNS_DIR = Path("/run/netns")


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} -> {proc.returncode}: {proc.stderr.strip()}")
    return proc


def netns_names(prefix: str) -> list[str]:
    """Named namespaces (in /run/netns) whose names start with `prefix`."""
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []
