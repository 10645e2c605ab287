"""Importing images from OCI layouts, OCI archives and root filesystems; removal and
garbage collection; refusal of archives that would write outside their target."""

from __future__ import annotations

import json
import os
import tarfile

import pytest

from agent.images.cli import cli_import, cli_list
from agent.images.errors import (
    ImageNotFound,
    InvalidImage,
    InvalidReference,
    UnsafeArchive,
    UnsupportedImage,
)
from agent.images.importer import import_image
from agent.images.oci import MT_OCI_INDEX, host_platform, sha256_digest
from agent.images.store import ImageStore
from agent.images.unpack import lower_dirs
from tests.integration.images.conftest import (
    blob_names,
    export_layout,
    layer_names,
    lexists,
    needs_root,
    run,
    tar_dir,
    tar_of,
)

pytestmark = [pytest.mark.integration, needs_root]


@pytest.fixture
def fresh(workdir) -> ImageStore:
    return ImageStore(workdir / "fresh")


async def test_layout_imported_twice_gives_one_digest_and_no_duplicate_blobs(
        busybox, store, fresh, workdir):
    layout = export_layout(store, busybox, workdir / "layout", "busybox:latest")
    first = await import_image(fresh, layout, "busybox:latest")
    blobs = blob_names(fresh)
    second = await import_image(fresh, layout, "busybox")
    assert first.digest == second.digest == busybox.digest
    assert blob_names(fresh) == blobs and len(blobs) == 3
    assert list(fresh.tmp.iterdir()) == []
    assert (layout / "blobs/sha256" / busybox.layers[0].hex).exists()  # source untouched


@pytest.mark.parametrize("mode", ["w", "w:gz"])
async def test_oci_archive_import(busybox, store, fresh, workdir, mode):
    layout = export_layout(store, busybox, workdir / "layout", "latest")
    archive = tar_dir(layout, workdir / "image.tar", mode)
    image = await import_image(fresh, archive, "localhost:5000/bb:v1")
    assert image.digest == busybox.digest and image.ref == "localhost:5000/bb:v1"
    assert list(fresh.tmp.iterdir()) == []


async def test_ref_from_the_layout_annotation_when_none_is_given(busybox, store, fresh,
                                                                 workdir):
    layout = export_layout(store, busybox, workdir / "l1", "example.com/bb:1")
    assert (await import_image(fresh, layout)).ref == "example.com/bb:1"
    bare = export_layout(store, busybox, workdir / "l2", "latest")
    with pytest.raises(InvalidReference, match="give the image a name"):
        await import_image(fresh, bare)


async def test_a_multi_platform_index_picks_this_hosts_manifest(busybox, store, fresh,
                                                                workdir):
    layout = export_layout(store, busybox, workdir / "layout", None)
    top = json.loads((layout / "index.json").read_text())
    real = top["manifests"][0]
    os_name, arch = host_platform()
    nested = json.dumps({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": [
        {**real, "digest": "sha256:" + "e" * 64, "platform": {"os": os_name,
                                                              "architecture": "s390x"}},
        {**real, "platform": {"os": os_name, "architecture": arch}},
    ]}).encode()
    (layout / "blobs/sha256" / sha256_digest(nested)[7:]).write_bytes(nested)
    top["manifests"] = [{"mediaType": MT_OCI_INDEX, "digest": sha256_digest(nested),
                         "size": len(nested)}]
    (layout / "index.json").write_text(json.dumps(top))
    image = await import_image(fresh, layout, "multi:1")
    assert image.digest == busybox.digest


async def test_a_tampered_layout_is_refused_and_nothing_is_stored(busybox, store, fresh,
                                                                  workdir):
    layout = export_layout(store, busybox, workdir / "layout", None)
    layer = layout / "blobs/sha256" / busybox.layers[0].hex
    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 0xFF
    layer.write_bytes(bytes(data))
    with pytest.raises(InvalidImage, match="layer 0: content is"):
        await import_image(fresh, layout, "bb")
    assert blob_names(fresh) == [] and list(fresh.tmp.iterdir()) == []
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0]["digest"] = "sha256:../../../../etc/passwd"
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(InvalidImage, match="64 lowercase hex"):
        await import_image(fresh, layout, "bb")


async def test_rootfs_directory_import_keeps_links_modes_and_owners(fresh, workdir):
    rootfs = workdir / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "bin/tool").write_bytes(b"#!/bin/sh\n")
    os.chown(rootfs / "bin/tool", 0, 1234)
    os.chmod(rootfs / "bin/tool", 0o4750)  # after chown, which clears setuid
    os.link(rootfs / "bin/tool", rootfs / "bin/tool2")
    os.symlink("/bin/tool", rootfs / "bin/abs-link")
    (rootfs / "dev").mkdir()
    os.mknod(rootfs / "dev/null", 0o20666, os.makedev(1, 3))  # dropped: runc makes /dev
    image = await import_image(fresh, rootfs, "mine:1")
    assert image.config.cmd == ("sh",) and len(image.layers) == 1
    [layer] = await lower_dirs(fresh, image)
    st = os.lstat(layer / "bin/tool")
    assert (st.st_mode & 0o7777, st.st_gid, st.st_nlink) == (0o4750, 1234, 2)
    assert os.readlink(layer / "bin/abs-link") == "/bin/tool"
    assert (layer / "dev").is_dir() and not lexists(layer / "dev/null")
    again = await import_image(fresh, rootfs, "mine:2")
    assert again.digest == image.digest


async def test_rootfs_tarball_import(fresh, workdir):
    archive = tar_of(workdir / "rootfs.tar", ("./etc", "dir", ""),
                     ("./etc/hostname", "file", "box\n"), ("./bin", "dir", ""),
                     ("./bin/sh", "symlink", "/bin/busybox"))
    assert (await run("gzip", "-k", str(archive))).returncode == 0
    plain = await import_image(fresh, archive, "rootfs:plain")
    gz = await import_image(fresh, workdir / "rootfs.tar.gz", "rootfs:gz")
    assert plain.diff_ids == gz.diff_ids
    [layer] = await lower_dirs(fresh, gz)
    assert (layer / "etc/hostname").read_text() == "box\n"
    assert os.readlink(layer / "bin/sh") == "/bin/busybox"


@pytest.mark.parametrize(("members", "match"), [
    ([("../evil", "file", "x")], r"'\.\.'"),
    ([("/evil-absolute", "file", "x")], "absolute path"),
    ([("esc", "symlink", "OUTSIDE"), ("esc/evil", "file", "x")], "beneath symlink 'esc'"),
])
async def test_escaping_tarballs_are_refused_and_write_nothing(fresh, workdir, members,
                                                               match):
    outside = workdir / "outside"
    outside.mkdir()
    members = [(n, k, v.replace("OUTSIDE", str(outside))) for n, k, v in members]
    archive = tar_of(workdir / "evil.tar", *members)
    with pytest.raises(UnsafeArchive, match=match):
        await import_image(fresh, archive, "evil")
    assert list(outside.iterdir()) == [] and not (workdir / "evil").exists()
    assert not lexists("/evil-absolute")
    assert blob_names(fresh) == [] and list(fresh.tmp.iterdir()) == []
    assert await fresh.resolve("evil") is None


async def test_an_oci_archive_with_an_escaping_member_is_refused(busybox, store, fresh,
                                                                 workdir):
    layout = export_layout(store, busybox, workdir / "layout", None)
    archive = tar_dir(layout, workdir / "image.tar")
    with tarfile.open(archive, "a") as tar:
        info = tarfile.TarInfo("../escaped")
        tar.addfile(info)
    with pytest.raises(UnsafeArchive, match=r"'\.\.'"):
        await import_image(fresh, archive, "bb")
    assert not (workdir / "escaped").exists() and list(fresh.tmp.iterdir()) == []


async def test_legacy_docker_save_archive_is_refused_with_a_hint(fresh, workdir):
    archive = tar_of(workdir / "legacy.tar", ("manifest.json", "file", "[]"),
                     ("repositories", "file", "{}"))
    with pytest.raises(UnsupportedImage, match="skopeo copy docker-archive"):
        await import_image(fresh, archive, "old")


async def test_remove_collects_blobs_and_layers_only_when_unreferenced(store, busybox):
    await lower_dirs(store, busybox)
    mine = await store.tag("busybox", "mybox:1")
    assert mine.digest == busybox.digest
    assert [s.ref for s in await store.list()] == ["busybox:latest", "mybox:1"]
    assert await store.remove("busybox")
    assert await store.resolve("mybox:1") is not None
    assert len(blob_names(store)) == 3 and len(layer_names(store)) == 1
    assert await store.remove("mybox:1")
    assert blob_names(store) == [] and layer_names(store) == []
    assert await store.list() == [] and not await store.remove("mybox:1")
    with pytest.raises(ImageNotFound):
        await store.tag("busybox", "again")


async def test_moving_a_tag_collects_the_image_it_left(store, busybox, workdir):
    rootfs = workdir / "r"
    rootfs.mkdir()
    (rootfs / "f").write_text("x")
    other = await import_image(store, rootfs, "busybox:latest")
    assert (await store.resolve("busybox")).digest == other.digest  # type: ignore[union-attr]
    assert busybox.layers[0].hex not in blob_names(store)
    assert len(blob_names(store)) == 3


async def test_remove_by_digest_removes_every_tag(store, busybox):
    await store.tag("busybox", "b2")
    assert await store.remove(busybox.digest)
    assert await store.list() == [] and blob_names(store) == []


def test_cli_functions(workdir):
    rootfs = workdir / "rootfs"
    rootfs.mkdir()
    (rootfs / "hello").write_text("hi")
    root = workdir / "clistore"
    assert cli_list(root) == []
    out = cli_import(root, rootfs, "hello:v1")
    assert out.startswith("hello:v1@sha256:")
    [row] = cli_list(root)
    assert row["ref"] == "hello:v1" and row["repository"] == "hello" and row["tag"] == "v1"
    assert row["digest"] == out.partition("@")[2] and row["size"] > 0
