"""A node's side of mounts on a real file system: a named volume's folder and record,
filled from the image once (not with nocopy, not when emptied on purpose), the image's
symlinks followed inside its root only, bind sources checked, removal all or nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.mounts import (
    MountSetupError,
    check_bind_source,
    ensure_volume,
    fill_volume,
    read_record,
    remove_volume,
    resolve_in_root,
)


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "var" / "lib" / "db").mkdir(parents=True)
    (root / "var" / "lib" / "db" / "seed.sql").write_text("create table t;\n")
    os.chmod(root / "var" / "lib" / "db" / "seed.sql", 0o640)
    (root / "data").symlink_to("/var/lib/db")  # absolute: from the image's root
    (root / "escape").symlink_to("../../../../etc")
    return root


def test_a_new_volume_is_filled_from_the_image_once(tmp_path: Path, rootfs: Path) -> None:
    volumes = tmp_path / "volumes"
    assert fill_volume(volumes, "shop_data", rootfs, "/data")  # through the symlink
    data = volumes / "shop_data" / "_data"
    assert (data / "seed.sql").read_text() == "create table t;\n"
    assert (data / "seed.sql").stat().st_mode & 0o777 == 0o640
    record = read_record(volumes, "shop_data")
    assert record is not None and record.populated

    (data / "seed.sql").unlink()  # emptied on purpose: stays empty
    assert not fill_volume(volumes, "shop_data", rootfs, "/data")
    assert list(data.iterdir()) == []
    assert read_record(volumes, "shop_data") == record  # created_at kept


def test_ensure_keeps_an_existing_volume_and_its_creation_time(tmp_path: Path) -> None:
    volumes = tmp_path / "volumes"
    first = ensure_volume(volumes, "v")
    (volumes / "v" / "_data" / "f").write_text("x")
    assert ensure_volume(volumes, "v") == first
    assert (volumes / "v" / "_data" / "f").read_text() == "x"


def test_a_missing_target_or_a_file_fills_nothing(tmp_path: Path, rootfs: Path) -> None:
    volumes = tmp_path / "volumes"
    assert not fill_volume(volumes, "a", rootfs, "/nowhere")
    assert not fill_volume(volumes, "b", rootfs, "/var/lib/db/seed.sql")


def test_symlinks_resolve_inside_the_root(rootfs: Path) -> None:
    assert resolve_in_root(rootfs, "/data") == rootfs / "var" / "lib" / "db"
    # `..` stops at the image's root, as in the container: never the host's /etc.
    assert resolve_in_root(rootfs, "/escape") is None
    assert resolve_in_root(rootfs, "/../../etc") is None
    (rootfs / "etc").mkdir()
    assert resolve_in_root(rootfs, "/escape") == rootfs / "etc"
    assert resolve_in_root(rootfs, "/../../etc") == rootfs / "etc"


def test_bind_sources_must_exist_unless_made_and_never_be_devices(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "deeper"
    with pytest.raises(MountSetupError, match=r"does not exist on node n1 .*create_host_path"):
        check_bind_source(str(missing), False, "n1")
    assert not missing.exists()
    check_bind_source(str(missing), True, "n1")
    assert missing.is_dir()
    with pytest.raises(MountSetupError, match="/dev/null is a device"):
        check_bind_source("/dev/null", False, "n1")
    check_bind_source(str(missing), False, "n1")  # exists now: fine


def test_removal_takes_folder_and_record_and_may_be_repeated(tmp_path: Path) -> None:
    volumes = tmp_path / "volumes"
    ensure_volume(volumes, "v")
    (volumes / "v" / "_data" / "f").write_text("x")
    remove_volume(volumes, "v")
    assert list(volumes.iterdir()) == []
    remove_volume(volumes, "v")
    with pytest.raises(MountSetupError):
        ensure_volume(volumes, "../x")
