"""Errors of the node network."""

from __future__ import annotations


class NetworkError(Exception):
    """A network setup or teardown step failed; the message says which and why."""
