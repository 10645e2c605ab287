"""Garbage in, clear errors out: the controller answers every mangled manifest with a
4xx of the one error shape, stores nothing from it, and keeps serving."""

from __future__ import annotations

import copy
import random
from typing import Any

import aiohttp
import pytest

from tests.integration.conftest import RunningController
from tests.integration.test_apply_flow import hello

pytestmark = pytest.mark.integration

CASES = 400
_ATOMS: list[Any] = [None, True, False, 0, -1, 2**63, 1.5, float("1e308"), "", "x",
                     "80:80:80", "../..", "${X}", "a" * 300, "\u0000", "🚢", [], {}]
_KEYS = ["name", "services", "image", "ports", "deploy", "replicas", "volumes",
         "networks", "command", "environment", "x-y", "bogus", "", "web", "0", "a/b"]


def _garbage(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 4 or roll < 0.4:
        return rng.choice(_ATOMS)
    if roll < 0.7:
        return {rng.choice(_KEYS): _garbage(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    return [_garbage(rng, depth + 1) for _ in range(rng.randint(0, 4))]


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(rng: random.Random, doc: Any) -> Any:
    """A valid manifest with one value somewhere replaced by garbage."""
    doc = copy.deepcopy(doc)
    path = rng.choice(_paths(doc)[1:])
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if isinstance(parent, dict) and rng.random() < 0.3:
        parent[rng.choice(_KEYS)] = _garbage(rng)
    else:
        parent[path[-1]] = _garbage(rng)
    return doc


async def test_garbage_manifests_get_clear_errors(controller: RunningController) -> None:
    rng = random.Random(20261128)
    base = hello(2)
    base["services"]["web"]["ports"] = ["8080:80"]
    base["services"]["web"]["environment"] = {"A": "1"}
    headers = {"Authorization": f"Bearer {controller.token}"}
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(headers=headers) as s:
        for i in range(CASES):
            manifest = _mutate(rng, base) if i % 2 else _garbage(rng)
            body = {"manifest": manifest, "source": "fuzz.yml", "dryRun": True}
            async with s.post(f"{controller.url}/api/v1/apply", json=body) as resp:
                answer = await resp.json(content_type=None)
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            assert resp.status in (200, 400, 422), (manifest, answer)
            if resp.status != 200:
                assert set(answer) == {"code", "message", "details"}, answer
                assert answer["message"]
        async with s.get(f"{controller.url}/api/v1/apps") as resp:
            assert resp.status == 200
            assert (await resp.json())["items"] == []  # dry runs store nothing
    # The mix must have exercised both sides, or the fuzzer proves nothing.
    assert statuses.get(422, 0) > CASES // 4 and statuses.get(200, 0) > 0, statuses


async def test_garbage_bodies_are_refused(controller: RunningController) -> None:
    rng = random.Random(7)
    headers = {"Authorization": f"Bearer {controller.token}",
               "Content-Type": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as s:
        for _ in range(100):
            blob = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
            async with s.post(f"{controller.url}/api/v1/apply", data=blob) as resp:
                answer = await resp.json(content_type=None)
                assert resp.status in (400, 422), (blob, answer)
                assert set(answer) == {"code", "message", "details"}
        async with s.get(f"{controller.url}/healthz") as resp:
            assert resp.status == 200


async def test_deeply_nested_and_non_utf8_bodies(controller: RunningController) -> None:
    headers = {"Authorization": f"Bearer {controller.token}",
               "Content-Type": "application/json"}
    bodies = [b"[" * 100_000 + b"]" * 100_000,
              b'{"manifest":' + b"[" * 200 + b"]" * 200 + b"}",
              b'{"manifest": "\xff\xfe"}']
    async with aiohttp.ClientSession(headers=headers) as s:
        for blob in bodies:
            async with s.post(f"{controller.url}/api/v1/apply", data=blob) as resp:
                answer = await resp.json(content_type=None)
                assert resp.status == 400, answer
                assert answer["code"] == "BadRequest"
