"""Typed keys for what the aiohttp application holds."""

from __future__ import annotations

from aiohttp import web

from controller.store.objects import ObjectStore

STORE = web.AppKey("store", ObjectStore)
