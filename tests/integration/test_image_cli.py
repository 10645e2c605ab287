"""`skiff image import` and `skiff images` on a node's store."""

from __future__ import annotations

import os
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
