"""The layer cache: a rebuild is all CACHED with the same image; editing one source file
re-runs only the source COPY and what follows (the seed's lesson); --no-cache re-runs
everything; the cache survives a new store object (another process) and build args."""

from __future__ import annotations

import pytest

from agent.images.store import ImageStore
from tests.integration.build.conftest import BuildEnv

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOCKERFILE = """\
FROM busybox
WORKDIR /app
COPY package.json .
RUN echo installing; cat package.json > installed.txt
COPY . .
RUN ls src > files.txt
CMD ["sh"]
"""


async def test_rebuild_is_all_cached_and_same_image(env: BuildEnv) -> None:
    env.write({"package.json": '{"deps": 1}', "src/main.txt": "v1"})
    first = await env.build(DOCKERFILE, tag="app:1")
    assert not any(s.cached for s in first.steps[1:])
    assert "installing" in env.output()
    again = await env.build(DOCKERFILE, tag="app:1")
    assert all(s.cached for s in again.steps), [(s.instruction, s.cached) for s in again.steps]
    assert again.image.digest == first.image.digest
    assert env.output() == []  # nothing ran
    rendered = [e.render() for e in env.events]
    assert rendered.count("  ---> CACHED") == len(again.steps)


async def test_source_edit_reruns_only_from_the_source_copy(env: BuildEnv) -> None:
    env.write({"package.json": '{"deps": 1}', "src/main.txt": "v1"})
    first = await env.build(DOCKERFILE)
    env.write({"src/main.txt": "v2"})
    second = await env.build(DOCKERFILE)
    assert env.cached(second) == ["FROM busybox", "WORKDIR /app", "COPY package.json .",
                                  "RUN echo installing; cat package.json > installed.txt"]
    assert "installing" not in env.output()
    assert second.image.diff_ids[:-2] == first.image.diff_ids[:-2]
    assert second.image.diff_ids[-2] != first.image.diff_ids[-2]
    # the dependency manifest changing re-runs the install
    env.write({"package.json": '{"deps": 2}'})
    third = await env.build(DOCKERFILE)
    assert env.cached(third) == ["FROM busybox", "WORKDIR /app"]
    assert "installing" in env.output()


async def test_touch_keeps_the_cache_and_mode_change_does_not(env: BuildEnv) -> None:
    env.write({"package.json": "{}", "src/main.txt": "v1"})
    await env.build(DOCKERFILE)
    (env.context / "src/main.txt").touch()  # mtime only: not in the key
    assert all(s.cached for s in (await env.build(DOCKERFILE)).steps)
    (env.context / "src/main.txt").chmod(0o600)
    result = await env.build(DOCKERFILE)
    assert env.cached(result)[-1] == "RUN echo installing; cat package.json > installed.txt"


async def test_no_cache_reruns_but_writes_entries(env: BuildEnv) -> None:
    env.write({"package.json": "{}", "src/main.txt": "v1"})
    await env.build(DOCKERFILE)
    fresh = await env.build(DOCKERFILE, no_cache=True)
    assert env.cached(fresh) == ["FROM busybox"]
    assert "installing" in env.output()
    # the entries --no-cache wrote are found by the next build, from a fresh store object
    # (as another process would see them)
    env.store = ImageStore(env.store.root)
    again = await env.build(DOCKERFILE)
    assert all(s.cached for s in again.steps)
    assert again.image.digest == fresh.image.digest


async def test_build_args_are_part_of_a_runs_key(env: BuildEnv) -> None:
    dockerfile = "FROM busybox\nARG V=1\nRUN echo v=$V > /v\nENV X=1\n"
    await env.build(dockerfile)
    same = await env.build(dockerfile, build_args={"V": "1"})
    assert all(s.cached for s in same.steps)
    other = await env.build(dockerfile, build_args={"V": "2"})
    assert env.cached(other) == ["FROM busybox", "ARG V=1"]
    assert other.image.config.env_map().get("V") is None


async def test_cache_survives_removing_the_image(env: BuildEnv) -> None:
    env.write({"package.json": "{}", "src/main.txt": "v1"})
    first = await env.build(DOCKERFILE, tag="app:1")
    await env.store.remove("app:1")  # the store collects the image's blobs
    again = await env.build(DOCKERFILE, tag="app:1")
    assert all(s.cached for s in again.steps)
    assert again.image.digest == first.image.digest
    assert await env.store.resolve("app:1") is not None
