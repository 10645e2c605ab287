"""A Dockerfile built for real: RUN (shell and exec form) in runc on overlayfs, COPY with
a glob and --chown, metadata instructions, and the image's config and layers."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import tarfile

import pytest

from agent.build import BuildError
from agent.images.models import Image
from agent.images.store import ImageStore
from agent.runtime import cgroups
from tests.integration.build.conftest import BuildEnv, mounts_under

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOCKERFILE = """\
FROM busybox
ARG GREETING=hello
ENV APP_HOME=/srv/app MODE=test
WORKDIR $APP_HOME
RUN echo "$GREETING from $MODE" > greeting.txt && id -u > who.txt
RUN ["/bin/sh", "-c", "echo exec form >> greeting.txt; echo streamed line"]
COPY *.txt conf/
COPY --chown=nobody:nobody data.bin ./data.bin
USER nobody
RUN id -u > /tmp/user-run.txt
LABEL org.example.kind=test
EXPOSE 8080
CMD ["sh", "-c", "cat greeting.txt"]
"""


def layer_members(store: ImageStore, image: Image, index: int) -> dict[str, tarfile.TarInfo]:
    data = gzip.decompress(store.blob_path(image.layers[index].digest).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def layer_file(store: ImageStore, image: Image, index: int, name: str) -> bytes:
    data = gzip.decompress(store.blob_path(image.layers[index].digest).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


def all_members(store: ImageStore, image: Image) -> set[str]:
    names: set[str] = set()
    for i in range(len(image.layers)):
        names |= set(layer_members(store, image, i))
    return names


async def test_build_runs_copies_and_records_config(env: BuildEnv) -> None:
    env.write({"a.txt": "A\n", "b.txt": "B\n", "skip.md": "no\n", "data.bin": b"\x00\x01"})
    result = await env.build(DOCKERFILE, tag="app:1")
    image = result.image
    assert image.ref == "app:1"
    resolved = await env.store.resolve("app:1")
    assert resolved is not None and resolved.digest == image.digest

    # busybox + WORKDIR dir + 2 RUNs + 2 COPYs + RUN as nobody
    assert len(image.layers) == len(env.busybox.layers) + 6
    cfg = image.config
    assert cfg.env_map()["APP_HOME"] == "/srv/app" and cfg.env_map()["MODE"] == "test"
    assert "GREETING" not in cfg.env_map()  # ARG values stay out of the config
    assert cfg.working_dir == "/srv/app"
    assert cfg.user == "nobody"
    assert cfg.cmd == ("sh", "-c", "cat greeting.txt")
    assert cfg.labels["org.example.kind"] == "test"
    assert cfg.exposed_ports == ("8080/tcp",)

    history = image.history[len(env.busybox.history):]
    assert [h.created_by for h in history] == [
        line for line in DOCKERFILE.splitlines()[2:]]
    assert [h.empty_layer for h in history] == [
        True, False, False, False, False, False, True, False, True, True, True]

    base = len(env.busybox.layers)
    greeting = layer_file(env.store, image, base + 2, "srv/app/greeting.txt")
    assert greeting == b"hello from test\nexec form\n"
    assert layer_file(env.store, image, base + 1, "srv/app/who.txt") == b"0\n"
    copied = layer_members(env.store, image, base + 3)
    assert {"srv/app/conf/a.txt", "srv/app/conf/b.txt"} <= set(copied)
    assert "srv/app/conf/skip.md" not in copied
    assert copied["srv/app/conf/a.txt"].uid == 0
    owned = layer_members(env.store, image, base + 4)["srv/app/data.bin"]
    assert (owned.uid, owned.gid) == (65534, 65534)
    assert layer_file(env.store, image, base + 5, "tmp/user-run.txt") == b"65534\n"
    # runc's mount points (proc, sys, dev, /etc/hosts...) are not part of any layer
    for i in range(base, len(image.layers)):
        names = set(layer_members(env.store, image, i))
        assert not names & {"proc", "sys", "dev", "etc/hosts", "etc/resolv.conf"}, names

    assert "streamed line" in env.output()
    steps = [s.instruction for s in result.steps]
    assert steps[0] == "FROM busybox" and len(steps) == 13
    rendered = [e.render() for e in env.events]
    assert "[#0] STEP 6/13: RUN [\"/bin/sh\", \"-c\", \"echo exec form >> greeting.txt; " \
           "echo streamed line\"]" in rendered
    assert not mounts_under(env.work_dir) and await env.runc_containers() == []
    assert list(env.work_dir.iterdir()) == []


async def test_built_image_runs_with_its_config(env: BuildEnv) -> None:
    env.write({"a.txt": "A\n", "b.txt": "B\n", "data.bin": b"x"})
    first = await env.build(DOCKERFILE, tag="app:1")
    result = await env.build('FROM app:1\nRUN ["sh", "-c", "cat greeting.txt; pwd; id -u"]\n')
    assert result.image.config.cmd == first.image.config.cmd
    assert env.output() == ["hello from test", "exec form", "/srv/app", "65534"]


async def test_failing_run_names_line_and_exit_code_and_leaves_nothing(env: BuildEnv) -> None:
    blobs = {p.name for p in env.store.blobs.iterdir()}
    with pytest.raises(BuildError) as info:
        await env.build("FROM busybox\nRUN echo one\nRUN echo before failing; exit 3\n",
                        tag="broken:1")
    err = info.value
    assert err.line == 3 and err.exit_code == 3
    assert "Dockerfile:3" in str(err) and "exit code 3" in str(err)
    assert "before failing" in err.output
    assert await env.store.resolve("broken:1") is None
    assert {p.name for p in env.store.blobs.iterdir()} == blobs
    assert not mounts_under(env.base)
    assert await env.runc_containers() == []
    assert list(env.work_dir.iterdir()) == []
    assert [e.kind for e in env.events].count("failed") == 1
    assert build_cgroups(env) == []


async def test_copy_outside_the_context_is_refused(env: BuildEnv) -> None:
    env.write({"a.txt": "A"})
    (env.context / "out").symlink_to("/etc/passwd")
    for source in ("../x", "/etc/passwd", "out"):
        with pytest.raises(BuildError) as info:
            await env.build(f"FROM busybox\nCOPY {source} /x\n")
        assert info.value.line == 2
        assert "context" in str(info.value), str(info.value)
    with pytest.raises(BuildError, match="remote"):
        await env.build("FROM busybox\nADD https://example.com/x /x\n")
    assert not mounts_under(env.base)


async def test_image_config_json_is_oci(env: BuildEnv) -> None:
    env.write({"a.txt": "A"})
    result = await env.build("FROM busybox\nCOPY a.txt /\n", tag="t:1")
    assert result.image.config_descriptor is not None
    config = json.loads(env.store.blob_path(result.image.id).read_bytes())
    assert config["rootfs"]["diff_ids"] == list(result.image.diff_ids)
    assert config["history"][-1]["created_by"] == "COPY a.txt /"
    manifest = json.loads(env.store.blob_path(result.image.digest).read_bytes())
    assert all(x["mediaType"].endswith("tar+gzip") for x in manifest["layers"])


def build_cgroups(env: BuildEnv) -> list[str]:
    return [str(d) for d in cgroups.existing_dirs(f"/{env.cgroup_parent}")
            if d.name.startswith("skiff-build-")]


async def test_cancelled_build_leaves_nothing(env: BuildEnv) -> None:
    task = asyncio.create_task(env.build(
        "FROM busybox\nRUN echo started; sleep 60\n", tag="slow:1"))
    deadline = asyncio.get_running_loop().time() + 20
    while "started" not in env.output():
        assert not task.done(), task
        assert asyncio.get_running_loop().time() < deadline, "the RUN never started"
        await asyncio.sleep(0.02)
    assert build_cgroups(env)  # the RUN's container is there while it runs
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await env.runc_containers() == []
    assert not mounts_under(env.base)
    assert build_cgroups(env) == []
    assert list(env.work_dir.iterdir()) == []
    assert await env.store.resolve("slow:1") is None
