"""Multi-stage builds: only the target stage's layers are in the image, COPY --from by
name, index or image, --target, stages the target does not need are skipped; and ADD of
local archives."""

from __future__ import annotations

import bz2
import io
import lzma
import tarfile

import pytest

from agent.build import BuildError
from skiff.build.errors import DockerfileError
from tests.integration.build.conftest import BuildEnv
from tests.integration.build.test_build import all_members, layer_members

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MULTI = """\
FROM busybox AS build
RUN mkdir -p /tool && echo compiler > /tool/cc && echo artefact > /out.bin
RUN echo scratch > /tool/tmp

FROM busybox AS unused
RUN exit 1

FROM busybox
COPY --from=build /out.bin /app/out.bin
CMD ["cat", "/app/out.bin"]
"""


async def test_final_image_has_only_final_stage_layers(env: BuildEnv) -> None:
    result = await env.build(MULTI, tag="multi:1")
    image = result.image
    assert len(image.layers) == len(env.busybox.layers) + 1
    names = all_members(env.store, image)
    assert "app/out.bin" in names
    assert not any(n == "tool" or n.startswith("tool/") for n in names)
    assert not any(n == "out.bin" for n in names)
    history = [h.created_by for h in image.history]
    assert history[len(env.busybox.history):] == [
        "COPY --from=build /out.bin /app/out.bin", 'CMD ["cat", "/app/out.bin"]']
    assert not any("RUN" in (h or "") for h in history)
    # the unused stage was never built (its RUN would fail)
    assert {s.stage for s in result.steps} == {"build", "#2"}
    # and the final filesystem runs without /tool
    check = await env.build("FROM multi:1\nRUN test ! -e /tool && cat /app/out.bin\n")
    assert check.image is not None
    assert env.output() == ["artefact"]


async def test_target_builds_the_first_stage(env: BuildEnv) -> None:
    result = await env.build(MULTI, target="build", tag="tools:1")
    assert {s.stage for s in result.steps} == {"build"}
    names = all_members(env.store, result.image)
    assert {"tool/cc", "tool/tmp", "out.bin"} <= names
    with pytest.raises(DockerfileError, match="no stage named"):
        await env.build(MULTI, target="nope")


async def test_copy_from_index_image_and_directories(env: BuildEnv) -> None:
    dockerfile = """\
FROM busybox
RUN mkdir -p /data/sub && echo 1 > /data/one && echo 2 > /data/sub/two
FROM scratch
COPY --from=0 /data /copied/
COPY --from=busybox /etc/passwd /etc/passwd
"""
    result = await env.build(dockerfile)
    names = all_members(env.store, result.image)
    assert {"copied/one", "copied/sub/two", "etc/passwd"} <= names
    assert "copied/data" not in names  # a directory's contents, not the directory
    assert len(result.image.layers) == 2


async def test_add_unpacks_local_archives(env: BuildEnv) -> None:
    def tar_bytes(files: dict[str, bytes], uid: int = 0) -> bytes:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.uid, info.gid = len(data), 0o640, uid, uid
                tar.addfile(info, io.BytesIO(data))
        return out.getvalue()

    env.write({
        "plain.tar": tar_bytes({"p/a.txt": b"plain"}, uid=1000),
        "gz.tgz": __import__("gzip").compress(tar_bytes({"g.txt": b"gz"})),
        "bz.tar.bz2": bz2.compress(tar_bytes({"b.txt": b"bz"})),
        "xz.tar.xz": lzma.compress(tar_bytes({"x.txt": b"xz"})),
        "notatar.gz": __import__("gzip").compress(b"just text"),
        "file.txt": "copied as is",
    })
    result = await env.build("""\
FROM busybox
ADD plain.tar /opt/
ADD gz.tgz bz.tar.bz2 xz.tar.xz /opt/more/
ADD notatar.gz file.txt /opt/files/
""")
    base = len(env.busybox.layers)
    plain = layer_members(env.store, result.image, base)
    assert plain["opt/p/a.txt"].uid == 1000 and plain["opt/p/a.txt"].mode == 0o640
    assert {"opt/more/g.txt", "opt/more/b.txt", "opt/more/x.txt"} <= set(
        layer_members(env.store, result.image, base + 1))
    assert {"opt/files/notatar.gz", "opt/files/file.txt"} <= set(
        layer_members(env.store, result.image, base + 2))


async def test_copy_rules(env: BuildEnv) -> None:
    env.write({"a.txt": "A", "b.txt": "B", "dir/x": "X"})
    with pytest.raises(BuildError, match="ending with '/'"):
        await env.build("FROM busybox\nCOPY a.txt b.txt /dest\n")
    with pytest.raises(BuildError, match="no file"):
        await env.build("FROM busybox\nCOPY *.nothing /dest/\n")
    with pytest.raises(BuildError, match="not found"):
        await env.build("FROM busybox\nCOPY missing.txt /dest/\n")
    result = await env.build("""\
FROM busybox
COPY a.txt /renamed.txt
COPY a.txt /etc/
COPY dir /d
COPY --chmod=700 b.txt /bin/
""")
    names = all_members(env.store, result.image)
    assert {"renamed.txt", "etc/a.txt", "d/x", "bin/b.txt"} <= names
    chmod = layer_members(env.store, result.image, len(env.busybox.layers) + 3)
    assert chmod["bin/b.txt"].mode == 0o700
    assert chmod["bin"].mode == 0o755  # an existing parent keeps its mode
