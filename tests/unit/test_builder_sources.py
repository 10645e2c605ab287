"""COPY/ADD planning on plain directories (a context dir and an image rootfs), the source
digest of the cache key, and a RUN's upper dir turned into OCI whiteouts."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agent.build.diff import drop_stubs, upper_entries
from agent.build.sources import (
    CopyJob,
    copy_entries,
    find_sources,
    mkdir_entries,
    parse_chown,
    tree_digest,
)
from skiff.build.errors import SourceError, UnsafePath


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    ctx, rootfs = tmp_path / "ctx", tmp_path / "rootfs"
    for d in (ctx / "src/sub", rootfs / "etc", rootfs / "usr/bin"):
        d.mkdir(parents=True)
    (rootfs / "bin").symlink_to("usr/bin")
    (rootfs / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/:/\n")
    (rootfs / "etc/group").write_text("root:x:0:\nstaff:x:50:\n")
    (ctx / "a.txt").write_text("A")
    (ctx / "b.txt").write_text("B")
    (ctx / "src/sub/x").write_text("X")
    (ctx / "src/link").symlink_to("sub/x")
    return ctx, rootfs


def plan(ctx: Path, rootfs: Path, patterns: tuple[str, ...], dest: str,
         **kw: object) -> dict[str, object]:
    sources = find_sources(ctx, patterns, in_context=True, keyword="COPY")
    job = CopyJob("COPY", sources, dest, kw.get("owner"), kw.get("chmod"),  # type: ignore[arg-type]
                  unpack_archives=False)
    return {e.path: e for e in copy_entries(job, rootfs)}


def test_files_globs_and_directories(dirs):
    ctx, rootfs = dirs
    entries = plan(ctx, rootfs, ("*.txt",), "/app/")
    assert set(entries) == {"app", "app/a.txt", "app/b.txt"}
    assert entries["app"].mode == 0o755 and entries["app/a.txt"].uid == 0
    entries = plan(ctx, rootfs, ("a.txt",), "/renamed")
    assert set(entries) == {"renamed"}
    entries = plan(ctx, rootfs, ("src",), "/opt/s")
    assert set(entries) == {"opt", "opt/s", "opt/s/sub", "opt/s/sub/x", "opt/s/link"}
    assert entries["opt/s/link"].kind == "symlink"
    # a destination through a symlink of the image lands where it points
    assert set(plan(ctx, rootfs, ("a.txt",), "/bin/")) == {"usr", "usr/bin", "usr/bin/a.txt"}
    with pytest.raises(SourceError, match="ending with '/'"):
        plan(ctx, rootfs, ("a.txt", "b.txt"), "/app")


def test_chown_and_chmod(dirs):
    ctx, rootfs = dirs
    assert parse_chown("app", rootfs) == (1000, 1000)
    assert parse_chown("app:staff", rootfs) == (1000, 50)
    assert parse_chown("7:8", rootfs) == (7, 8)
    with pytest.raises(SourceError, match="nobody"):
        parse_chown("nobody", rootfs)
    entries = plan(ctx, rootfs, ("a.txt",), "/x/", owner=(1000, 50), chmod=0o600)
    assert (entries["x/a.txt"].uid, entries["x/a.txt"].gid, entries["x/a.txt"].mode) == \
        (1000, 50, 0o600)
    assert entries["x"].uid == 0  # created parents stay root's


def test_sources_outside_the_context_are_refused(dirs, tmp_path):
    ctx, _ = dirs
    (ctx / "out").symlink_to("/etc/passwd")
    (ctx / "up").symlink_to("../rootfs")
    for pattern in ("../rootfs", "/etc/passwd", "out", "up/etc/passwd"):
        with pytest.raises(UnsafePath):
            find_sources(ctx, (pattern,), in_context=True, keyword="COPY")
    with pytest.raises(SourceError, match="remote"):
        find_sources(ctx, ("https://x/y",), in_context=True, keyword="ADD")


def test_tree_digest_ignores_mtime_not_content_or_mode(dirs):
    ctx, _ = dirs

    def digest() -> str:
        return tree_digest(find_sources(ctx, ("src",), in_context=True, keyword="COPY"))

    first = digest()
    os.utime(ctx / "src/sub/x", (1, 1))
    assert digest() == first
    (ctx / "src/sub/x").chmod(0o600)
    second = digest()
    assert second != first
    (ctx / "src/sub/x").write_text("Y")
    assert digest() != second


def test_mkdir_entries(dirs):
    _, rootfs = dirs
    assert mkdir_entries(rootfs, "/etc") == []
    assert [e.path for e in mkdir_entries(rootfs, "/srv/app")] == ["srv", "srv/app"]


@pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts are device nodes: needs root")
def test_upper_dir_whiteouts_become_oci_whiteouts(tmp_path):
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    os.mknod(upper / "etc/gone", stat.S_IFCHR, os.makedev(0, 0))
    (upper / "opq").mkdir()
    os.setxattr(upper / "opq", "trusted.overlay.opaque", b"y")
    (upper / "opq/new").write_text("n")
    (upper / "proc").mkdir()
    drop_stubs(upper, before=set())
    entries = {e.path: e for e in upper_entries(upper)}
    assert set(entries) == {"etc", "etc/.wh.gone", "opq", "opq/.wh..wh..opq", "opq/new"}
    assert entries["etc/.wh.gone"].kind == "file"
