"""The busybox image built from busybox-static: its content, its reproducibility, and a
shell that runs in it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agent.images.busybox import build_busybox_image
from agent.images.store import ImageStore
from agent.images.unpack import lower_dirs
from tests.integration.images.conftest import (
    blob_names,
    layer_names,
    needs_root,
    overlay,
    run,
)

pytestmark = [pytest.mark.integration, needs_root]
REPO = Path(__file__).resolve().parents[3]


async def test_busybox_resolves_under_every_spelling(store, busybox):
    for ref in ("busybox", "busybox:latest", "docker.io/library/busybox:latest",
                busybox.digest, f"busybox@{busybox.digest}"):
        found = await store.resolve(ref)
        assert found is not None and found.digest == busybox.digest, ref
    assert busybox.ref == "busybox:latest"
    assert busybox.config.cmd == ("sh",) and busybox.config.entrypoint is None
    assert any(e.startswith("PATH=") for e in busybox.config.env)
    assert busybox.architecture and busybox.os == "linux" and len(busybox.layers) == 1
    assert await store.resolve("busybox:other") is None
    assert [s.ref for s in await store.list()] == ["busybox:latest"]


async def test_unpacked_busybox_has_applets_and_base_dirs(store, busybox):
    [layer] = await lower_dirs(store, busybox)
    assert layer == store.layers / busybox.diff_ids[0][7:]
    assert os.readlink(layer / "bin/sh") == "busybox"
    assert (layer / "bin/sh").resolve() == layer / "bin/busybox"
    applets = (await run("/bin/busybox", "--list")).stdout.split()
    assert all((layer / "bin" / a).is_symlink() for a in applets if a != "busybox")
    for d in ("proc", "sys", "dev", "root"):
        assert (layer / d).is_dir() and not any((layer / d).iterdir()), d
    assert sorted(p.name for p in (layer / "etc").iterdir()) == ["group", "passwd"]
    assert stat.S_IMODE((layer / "tmp").stat().st_mode) == 0o1777
    passwd = (layer / "etc/passwd").read_text()
    assert passwd.startswith("root:x:0:0:") and "\nnobody:x:65534:65534:" in passwd
    assert "root:x:0:" in (layer / "etc/group").read_text()
    st = (layer / "bin/busybox").stat()
    assert (st.st_uid, st.st_gid, st.st_mtime, stat.S_IMODE(st.st_mode)) == (0, 0, 0, 0o755)


async def test_building_again_gives_the_same_digest_and_no_new_blobs(store, busybox):
    await lower_dirs(store, busybox)
    blobs, layers = blob_names(store), layer_names(store)
    again = await build_busybox_image(store)
    assert again.digest == busybox.digest
    assert blob_names(store) == blobs and layer_names(store) == layers
    other = ImageStore(store.root.parent / "other")
    assert (await build_busybox_image(other)).digest == busybox.digest


async def test_the_deploy_script_builds_the_same_image_idempotently(workdir, busybox):
    target = workdir / "script-store"
    for _ in range(2):
        proc = await run(str(REPO / "deploy/make-busybox-image.sh"), "--store", str(target))
        assert proc.returncode == 0, proc.stderr
        assert busybox.digest in proc.stdout
    assert len(blob_names(ImageStore(target))) == 3


async def test_a_shell_runs_in_the_overlay_and_writes_land_in_the_upper_dir(
        store, busybox, workdir):
    lowers = await lower_dirs(store, busybox)
    with overlay(lowers, workdir / "c1") as (merged, upper):
        proc = await run("chroot", str(merged), "/bin/sh", "-c",
                         "echo written > /tmp/x && cat /etc/passwd | head -1")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("root:x:0:0")
        (merged / "etc/added").write_text("from python")
        assert (upper / "tmp/x").read_text() == "written\n"
        assert (upper / "etc/added").exists()
    assert not (lowers[0] / "tmp/x").exists() and not (lowers[0] / "etc/added").exists()
