"""The lab's real registry: an image pushed from one store is pulled on demand by the node
that runs it, and arrives with the same digests."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from agent.images.busybox import build_busybox_image
from agent.images.store import ImageStore
from tests.e2e.conftest import Lab, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]


def _app(lab: Lab) -> str:
    return f"""\
name: pulled
services:
  web:
    image: pushed:1
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    deploy:
      replicas: 2
      placement:
        constraints: ["node.name=={lab.node(2)}"]
"""


def _stored(lab: Lab, i: int, ref: str) -> tuple[str, str] | None:
    async def look() -> tuple[str, str] | None:
        image = await ImageStore(lab.state_dir / "nodes" / f"n{i}" / "images").resolve(ref)
        return None if image is None else (image.digest, image.id)
    return asyncio.run(look())


def test_push_then_a_node_pulls_on_demand_with_equal_digests(lab: Lab) -> None:
    work = Path(tempfile.mkdtemp(prefix="skiff-e2e-push-"))
    remote = f"{lab.registry}/pushed:1"
    try:
        async def build() -> tuple[str, str]:
            store = ImageStore(work / "store")
            await build_busybox_image(store)
            image = await store.tag("busybox", remote)
            return image.digest, image.id
        digest, config = asyncio.run(build())
        out = lab.skiff("push", "--store", str(work / "store"), "--insecure-registry",
                        lab.registry, remote).stdout
        match = re.search(r"digest: (sha256:[0-9a-f]{64})", out)
        assert match and match.group(1) == digest, out

        lab.apply(_app(lab))

        def two_running() -> list[dict] | None:
            tasks = [t for t in lab.tasks("pulled") if t["status"]["state"] == "running"]
            return tasks if len(tasks) == 2 else None
        wait_for(two_running, "2 replicas of the pushed image running on node 2", 120)
        # Pulled once onto node 2, under the bare name too, with the pushed digests;
        # node 1 runs none of it and pulled nothing.
        assert _stored(lab, 2, "pushed:1") == (digest, config)
        assert _stored(lab, 2, remote) == (digest, config)
        assert _stored(lab, 1, "pushed:1") is None
    finally:
        lab.skiff("delete", "app", "pulled", check=False)
        shutil.rmtree(work, ignore_errors=True)
