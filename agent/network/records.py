"""The agent's small JSON records (endpoints, attachments, network configs): read back
after a restart, written so a reader sees the old record or the new one, never half."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from agent.network.errors import NetworkError

log = logging.getLogger(__name__)
T = TypeVar("T")


def load_record(path: Path, parse: Callable[[str], T], what: str) -> T | None:
    """The record at `path`, or None if there is none or it cannot be read (logged: an
    unreadable record is treated as missing, and its leftovers are cleaned up as such)."""
    try:
        return parse(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, NetworkError) as exc:
        log.warning("ignoring unreadable %s record %s: %s", what, path, exc)
        return None


def save_record(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
