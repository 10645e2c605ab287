"""`skiff builder prune` on a real layer cache: recent entries survive `--until`, a full
prune frees the cache's blobs and the next build runs every step again."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from agent.build.cache import BuildCache
from tests.integration.build.conftest import BuildEnv

DOCKERFILE = "FROM busybox\nCOPY a.txt /a.txt\nRUN echo ran > /ran\n"


def _prune(env: BuildEnv, *flags: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "skiff.cli.main", "builder", "prune",
                           "--store", str(env.store.root), "-f", *flags],
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


async def test_prune_until_keeps_recent_cache_and_a_full_prune_empties_it(
        env: BuildEnv) -> None:
    env.write({"a.txt": "a" * 50_000})
    first = await env.build(DOCKERFILE)
    assert env.cached(first) == ["FROM busybox"]
    cache = BuildCache(env.store.root)
    blobs = list(cache.blobs.iterdir())
    assert len(blobs) == 2  # the COPY's layer and the RUN's

    out = _prune(env, "--until", "1h")
    assert "Deleted 0 cache entries and 0 layer blob(s)" in out, out
    again = await env.build(DOCKERFILE)
    assert len(env.cached(again)) == 3 and again.image.digest == first.image.digest

    # Entries unused for longer than --until go; a hit keeps its entry fresh.
    old = time.time() - 7200
    for entry in cache.entries.iterdir():
        os.utime(entry, (old, old))
    out = _prune(env, "--until", "1h")
    assert "Deleted 2 cache entries and 2 layer blob(s)" in out, out
    assert "Total reclaimed space: 0B" not in out
    assert list(cache.blobs.iterdir()) == []

    rebuilt = await env.build(DOCKERFILE)
    assert env.cached(rebuilt) == ["FROM busybox"]
    assert len(list(cache.blobs.iterdir())) == 2

    out = _prune(env)
    assert "Deleted 2 cache entries and 2 layer blob(s); 0 entries kept" in out, out
