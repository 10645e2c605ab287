"""`skiff image import` and `skiff images` on a node's store."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.integration.cli import skiff

pytestmark = pytest.mark.integration


def _rootfs(base: Path) -> Path:
    root = base / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    os.symlink("busybox", root / "bin" / "sh")
    return root


async def test_import_a_rootfs_and_list_it(tmp_path: Path) -> None:
    store = tmp_path / "images"
    res = await skiff("image", "import", str(_rootfs(tmp_path)), "tiny:1", "--store", str(store))
    assert res.code == 0, res.err
    assert res.out.startswith("tiny:1@sha256:")
    again = await skiff("image", "import", str(_rootfs(tmp_path / "b")), "tiny:1",
                        "--store", str(store))
    assert again.code == 0 and again.out.startswith("tiny:1@sha256:")  # the tag moves
    listed = await skiff("images", "--store", str(store))
    header, row = listed.out.splitlines()
    assert header.split()[:3] == ["REPOSITORY", "TAG", "IMAGE"]
    assert row.split()[:2] == ["tiny", "1"]
    bad = await skiff("image", "import", str(tmp_path / "missing"), "x:1", "--store", str(store))
    assert bad.code == 1 and bad.err.startswith("error:")


# ---- history, tag, rmi, prune (skiff/cli/image_ops.py) --------------------------------------


async def _three_step_image(store_root: Path) -> tuple[str, str]:
    """busybox, then an ENV (no layer) and a RUN (a layer) on top of it, with docker-like
    history; returns the two layers' blob digests, base first."""
    from datetime import UTC, datetime, timedelta

    from agent.images.busybox import build_busybox_image
    from agent.images.layerbuild import Entry, write_layer
    from agent.images.oci import canonical_json, make_manifest
    from agent.images.store import ImageStore

    store = ImageStore(store_root)
    base = await build_busybox_image(store)
    out = store.temp_path("layer")
    top = write_layer([Entry("etc", "dir"), Entry("etc/motd", "file", mode=0o644,
                                                   data=b"hi\n" * 1000)], out)
    recent = (datetime.now(UTC) - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    run = "/bin/sh -c " + " && ".join(f"echo step {i} >> /etc/motd" for i in range(10))
    config = canonical_json({
        "created": recent, "architecture": base.architecture, "os": base.os,
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [*base.diff_ids, top.diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "busybox"},
                    {"created": recent, "created_by": "ENV GREETING=hi",
                     "empty_layer": True},
                    {"created": recent, "created_by": run, "comment": "buildkit"}]})
    manifest = make_manifest(config, [*base.layers, top.descriptor])
    await store.add_image(manifest, config, [None, out], ref="app:1")
    return base.layers[0].digest, top.descriptor.digest


async def test_history_newest_first_with_missing_for_empty_layers(tmp_path: Path) -> None:
    store = tmp_path / "images"
    base, top = await _three_step_image(store)
    res = await skiff("image", "history", "app:1", "--store", str(store))
    assert res.code == 0, res.err
    header, *rows = res.out.splitlines()
    assert re.split(" {3,}", header) == ["IMAGE", "CREATED", "CREATED BY", "SIZE",
                                         "COMMENT"]
    assert len(rows) == 3
    assert rows[0].startswith(top.removeprefix("sha256:")[:12] + "   3 minutes ago   ")
    assert "…" in rows[0] and "buildkit" in rows[0]      # truncated, with its comment
    assert rows[1].startswith("<missing>") and "ENV GREETING=hi" in rows[1]
    assert re.split(" {3,}", rows[1])[3] == "0B"
    assert rows[2].startswith(base.removeprefix("sha256:")[:12]) and "years ago" in rows[2]
    full = await skiff("image", "history", "app:1", "--no-trunc", "--store", str(store))
    assert top in full.out and "echo step 9 >> /etc/motd" in full.out
    js = await skiff("image", "history", "app:1", "-o", "json", "--store", str(store))
    entries = json.loads(js.out)
    assert [e["layer"] for e in entries] == [top, None, base]
    assert entries[1]["emptyLayer"] and entries[1]["size"] == 0
    assert entries[0]["comment"] == "buildkit" and entries[0]["size"] > 0
    missing = await skiff("image", "history", "nope:1", "--store", str(store))
    assert missing.code == 1 and "no such image: nope:1" in missing.err


async def test_tag_rmi_and_prune(tmp_path: Path) -> None:
    store = tmp_path / "images"
    await _three_step_image(store)
    res = await skiff("tag", "app:1", "registry.local:5000/app:2", "--store", str(store))
    assert res.code == 0, res.err
    res = await skiff("image", "tag", "busybox", "bb:x", "--store", str(store))
    assert res.code == 0, res.err
    listed = await skiff("images", "--store", str(store))
    ids = {tuple(r.split()[:3]) for r in listed.out.splitlines()[1:]}
    assert ("registry.local:5000/app", "2", _id_of(ids, "app")) in ids
    bad = await skiff("tag", "nope", "x:1", "--store", str(store))
    assert bad.code == 1 and "no such image: nope" in bad.err

    # Still tagged elsewhere: only untagged, nothing deleted.
    res = await skiff("rmi", "app:1", "--store", str(store))
    assert res.code == 0 and res.out == "Untagged: app:1\n", res
    blobs_before = set(os.listdir(store / "blobs" / "sha256"))
    # The last tag: the image's own blobs go, busybox's layer (bb:x, busybox) stays.
    res = await skiff("rmi", "registry.local:5000/app:2", "nope:9", "--store", str(store))
    assert res.code == 1 and "no such image: nope:9" in res.err
    assert res.out.startswith("Untagged: registry.local:5000/app:2\nDeleted: sha256:")
    blobs_after = set(os.listdir(store / "blobs" / "sha256"))
    assert len(blobs_before - blobs_after) == 3  # manifest, config, top layer
    assert (await skiff("image", "history", "bb:x", "--store", str(store))).code == 0

    # Garbage a crash could leave: a blob and an unpacked layer nothing names.
    (store / "blobs" / "sha256" / ("ab" * 32)).write_bytes(b"x" * 5000)
    (store / "layers" / ("cd" * 32) / "etc").mkdir(parents=True)
    res = await skiff("image", "prune", "--store", str(store))
    assert res.code == 0, res.err
    assert res.out.splitlines()[0] == "Deleted 1 blob(s) and 1 unpacked layer(s)"
    assert res.out.splitlines()[1].startswith("Total reclaimed space: 5.")
    again = await skiff("image", "prune", "--store", str(store))
    assert again.out.splitlines() == ["Deleted 0 blob(s) and 0 unpacked layer(s)",
                                      "Total reclaimed space: 0B"]
    assert (await skiff("images", "--store", str(store))).out.count("\n") == 3


def _id_of(rows: set[tuple[str, ...]], repository: str) -> str:
    return next(r[2] for r in rows if r[0] == repository)
