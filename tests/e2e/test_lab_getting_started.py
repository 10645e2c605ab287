"""manifests/getting-started on the lab: `skiff apply` builds it, pushes it and runs it;
the todo list answers on every node; editing one source file and applying again re-runs
only the source COPY (and the CMD after it): every other layer is a cache hit. And the
seed's compose story: `skiff compose up -d`, add items, `down`, `up -d`: still there."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from agent.images.store import ImageStore
from tests.e2e.conftest import SKIFF, Lab, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(400)]

APP_DIR = Path(__file__).resolve().parents[2] / "manifests" / "getting-started"
STEP = re.compile(r"^\[[^\]]+\] STEP \d+/\d+: (.*)$")


def step_outcomes(out: str) -> list[tuple[str, bool]]:
    """(instruction, cached) for every step `--progress plain` printed."""
    steps: list[tuple[str, bool]] = []
    current: str | None = None
    for line in out.splitlines():
        if match := STEP.match(line):
            current = match.group(1)
        elif current is not None and line.strip().startswith("--->"):
            steps.append((current, line.strip() == "---> CACHED"))
            current = None
    return steps


def _layers(lab: Lab, ref: str) -> list[str]:
    async def look() -> list[str]:
        for i in range(1, lab.nodes + 1):
            store = ImageStore(lab.state_dir / "nodes" / f"n{i}" / "images")
            image = await store.resolve(ref)
            if image is not None:
                return [layer.digest for layer in image.layers]
        raise AssertionError(f"{ref} is in no node's store")
    return asyncio.run(look())


def _get(url: str, data: bytes | None = None) -> str | None:
    try:
        with urllib.request.urlopen(url, data=data, timeout=5) as response:
            return response.read().decode()
    except OSError:
        return None


def _service_image(lab: Lab, service: str = "web") -> str:
    out = lab.skiff("get", "services", "--app", "getting-started", "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return str(next(i for i in items if i["metadata"]["name"] == service)["spec"]["image"])


def _apply(lab: Lab, compose: Path) -> str:
    return lab.skiff("apply", "-f", str(compose), "--progress", "plain", timeout=300).stdout


def test_getting_started_builds_runs_and_rebuilds_only_the_source(lab: Lab) -> None:
    work = Path(tempfile.mkdtemp(prefix="skiff-e2e-gs-"))
    app = work / "getting-started"
    try:
        shutil.copytree(APP_DIR, app, symlinks=True)
        first = _apply(lab, app / "compose.yml")
        assert "app/getting-started created" in first, first
        image1 = _service_image(lab)
        assert image1.startswith("getting-started:1@sha256:"), image1
        # Read now: the rebuild retags getting-started:1 on the node that builds it.
        before = _layers(lab, image1)

        url = f"http://{lab.node_address(3)}:3000/cgi-bin/items"
        assert wait_for(lambda: _get(url, b"item=buy+milk"), "the todo app answers",
                        timeout=120) is not None
        listed = wait_for(lambda: _get(url), "the list")
        assert "buy milk" in listed.splitlines(), listed
        page = _get(f"http://{lab.node_address(1)}:3000/")
        assert page is not None and "<title>Todo</title>" in page

        index = app / "src" / "www" / "index.html"
        index.write_text(index.read_text().replace("<h1>Todo</h1>", "<h1>My todo</h1>"))
        second = _apply(lab, app / "compose.yml")
        steps = step_outcomes(second)
        rerun = [instruction for instruction, cached in steps if not cached]
        assert rerun == ["COPY src/ ./", 'CMD ["httpd", "-f", "-v", "-p", "3000", "-h", '
                                          '"/app/www"]'], second
        assert "service/getting-started/web configured" in second, second
        image2 = _service_image(lab)
        assert image2 != image1
        after = _layers(lab, image2)
        assert len(before) == len(after) and before[:-1] == after[:-1]
        assert before[-1] != after[-1]

        def new_page() -> str | None:
            page = _get(f"http://{lab.node_address(2)}:3000/")
            return page if page and "My todo" in page else None
        wait_for(new_page, "the edited page served", timeout=120)

        unchanged = _apply(lab, app / "compose.yml")
        assert all(cached for _, cached in step_outcomes(unchanged)), unchanged
        assert "app/getting-started unchanged" in unchanged
    finally:
        lab.skiff("delete", "app", "getting-started", "--volumes", "--ignore-not-found",
                  check=False)
        shutil.rmtree(work, ignore_errors=True)


def _compose(lab: Lab, app: Path, *args: str) -> str:
    env = {**os.environ, "SKIFF_CONFIG": str(lab.config)}
    proc = subprocess.run([SKIFF, "compose", *args], cwd=app, capture_output=True,
                          text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, f"skiff compose {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def test_compose_up_down_up_keeps_the_items(lab: Lab) -> None:
    work = Path(tempfile.mkdtemp(prefix="skiff-e2e-compose-"))
    app = work / "getting-started"
    try:
        shutil.copytree(APP_DIR, app, symlinks=True)
        _compose(lab, app, "up", "-d", "--wait", "--progress", "plain")
        ps = _compose(lab, app, "ps")
        assert sum(" web " in f" {line} " for line in ps.splitlines()) == 2, ps
        assert sum(" db " in f" {line} " for line in ps.splitlines()) == 1, ps

        urls = [f"http://{lab.node_address(i)}:3000/cgi-bin/items" for i in (1, 2, 3)]
        for i, item in enumerate(("milk", "bread", "eggs")):
            answer = wait_for(lambda u=urls[i], x=item: _get(u, f"item={x}".encode()),
                              f"adding {item} on node {i + 1}", timeout=60)
            assert item in answer.splitlines(), answer

        _compose(lab, app, "down")
        assert not lab.tasks("getting-started")
        _compose(lab, app, "up", "-d", "--wait")
        listed = wait_for(lambda: _get(urls[0]), "the list after up again", timeout=60)
        assert listed.splitlines()[-3:] == ["milk", "bread", "eggs"], listed
    finally:
        lab.skiff("delete", "app", "getting-started", "--volumes", "--ignore-not-found",
                  check=False)
        shutil.rmtree(work, ignore_errors=True)
