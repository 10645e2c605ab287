"""Reading a JSON request body without trusting it: encoding, syntax, depth."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from controller.api.errors import bad_request

# Deeper than any real object; deep enough garbage would exhaust the recursion of the
# validators that walk it.
MAX_DEPTH = 64


def _depth(value: Any, limit: int) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


async def read_json(request: web.Request) -> Any:
    raw = await request.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(f"request body is not UTF-8: {exc.reason} at byte {exc.start}"
                          ) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad_request(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise bad_request(f"request body is nested deeper than {MAX_DEPTH} levels") from None
    if _depth(value, MAX_DEPTH) > MAX_DEPTH:
        raise bad_request(f"request body is nested deeper than {MAX_DEPTH} levels")
    return value
