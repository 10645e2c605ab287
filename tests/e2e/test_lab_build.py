"""`skiff build` on the lab: the CLI sends the context through the controller to one
agent, which builds and pushes to the lab's registry; another node pulls and runs it."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from agent.images.store import ImageStore
from tests.e2e.conftest import Lab, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(400)]

MULTI_STAGE = """\
FROM busybox AS builder
WORKDIR /src
COPY hello.txt .
RUN mkdir -p /tools && echo 'cc' > /tools/compiler \\
 && echo "echo built from $(cat hello.txt)" > /src/app.sh
FROM busybox
COPY --from=builder /src/app.sh /app/app.sh
CMD ["sh", "/app/app.sh"]
"""


def _digest_on(lab: Lab, i: int, ref: str) -> str | None:
    async def look() -> str | None:
        image = await ImageStore(lab.state_dir / "nodes" / f"n{i}" / "images").resolve(ref)
        return None if image is None else image.digest
    return asyncio.run(look())


def _running(lab: Lab, app: str) -> list[dict[str, Any]] | None:
    tasks = lab.tasks(app)
    ok = [t for t in tasks if t["status"]["state"] == "running"]
    return ok or None


def test_multi_stage_build_pushes_and_runs_elsewhere_without_the_build_tools(
        lab: Lab) -> None:
    context = Path(tempfile.mkdtemp(prefix="skiff-e2e-build-"))
    try:
        (context / "hello.txt").write_text("stage-one\n")
        (context / "Dockerfile").write_text(MULTI_STAGE)
        out = lab.skiff("build", "-t", "multi:1", "--progress", "plain", "--node",
                        lab.node(1), str(context), timeout=300).stdout
        assert f"=> building on node {lab.node(1)}" in out, out
        assert f"Pushed {lab.registry}/multi:1" in out, out
        digest = next(line.split()[2] for line in out.splitlines()
                      if line.startswith("Successfully built"))

        # Only the final stage's layers: busybox and the COPY --from.
        history = lab.skiff("image", "history", "--store",
                            str(lab.state_dir / "nodes" / "n1" / "images"), "multi:1").stdout
        assert "COPY --from=builder /src/app.sh /app/app.sh" in history, history
        assert "/tools" not in history and "WORKDIR /src" not in history, history

        lab.apply(f"""\
name: multi
services:
  app:
    image: multi:1
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    deploy:
      placement:
        constraints: ["node.name=={lab.node(2)}"]
""")
        tasks = wait_for(lambda: _running(lab, "multi"), "multi running on node 2",
                         timeout=120)
        task = tasks[0]
        assert task["spec"]["nodeName"] == lab.node(2)
        assert _digest_on(lab, 2, "multi:1") == digest

        ran = lab.skiff("exec", f"multi/{task['metadata']['name']}", "--", "sh",
                        "/app/app.sh").stdout
        assert ran.strip() == "built from stage-one"
        probe = lab.skiff("exec", f"multi/{task['metadata']['name']}", "--", "ls",
                          "/tools/compiler", check=False)
        assert probe.returncode != 0, probe.stdout
    finally:
        lab.skiff("delete", "app", "multi", "--ignore-not-found", check=False)
        shutil.rmtree(context, ignore_errors=True)


def test_a_failing_step_reports_its_output_and_exit_code(lab: Lab) -> None:
    context = Path(tempfile.mkdtemp(prefix="skiff-e2e-build-"))
    try:
        (context / "Dockerfile").write_text("FROM busybox\nRUN echo about-to-fail; exit 7\n")
        proc = lab.skiff("build", "-t", "broken:1", "--progress", "plain", str(context),
                         check=False, timeout=300)
        assert proc.returncode == 1
        assert "about-to-fail" in proc.stdout
        assert "Dockerfile:2: RUN echo about-to-fail; exit 7" in proc.stderr
        assert "exit code 7" in proc.stderr
    finally:
        shutil.rmtree(context, ignore_errors=True)
