"""manifests/getting-started on the lab: `skiff apply` builds it, pushes it and runs it;
the todo list answers on every node; editing one source file and applying again re-runs
only the source COPY (and the CMD after it): every other layer is a cache hit."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from agent.images.store import ImageStore
from tests.e2e.conftest import Lab, wait_for

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


def _service_image(lab: Lab) -> str:
    out = lab.skiff("get", "services", "--app", "getting-started", "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return str(items[0]["spec"]["image"])


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
        lab.skiff("delete", "app", "getting-started", "--ignore-not-found", check=False)
        shutil.rmtree(work, ignore_errors=True)
