"""Typed keys for what the aiohttp application holds."""

from __future__ import annotations

from aiohttp import web

from controller.store.objects import ObjectStore

STORE = web.AppKey("store", ObjectStore)

# Open watch streams, cancelled on shutdown so the server stops at once rather than
# waiting for each stream's next write to find its client gone.
WATCHES = web.AppKey("watches", set)

# Host folders bind mounts may come from (`skiff controller --allowed-bind-prefix`);
# empty: any.
BIND_PREFIXES = web.AppKey("bind_prefixes", tuple)
