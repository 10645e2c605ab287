"""Layer tars: the escape checks, whiteout translation to overlayfs form, attributes, and
reproducible writing. Synthetic tars in temp dirs; the unpack tests need root (mknod of
whiteouts, trusted.* xattrs, chown), as the agent does."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from agent.images.compress import HashingReader, diff_id_of
from agent.images.errors import InvalidImage, UnsafeArchive
from agent.images.layerbuild import Entry, write_layer
from agent.images.tarsafe import ArchiveChecker, clean_name
from agent.images.unpack import OPAQUE_XATTR, apply_tar, unpack_layer

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="unpacking needs root")
TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
         "hardlink": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE,
         "fifo": tarfile.FIFOTYPE}


def m(name: str, kind: str = "file", data: bytes = b"", *, mode: int = 0o644,
      uid: int = 0, gid: int = 0, target: str = "", dev: tuple[int, int] = (0, 0),
      xattrs: dict[str, bytes] | None = None) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = TYPES[kind]
    info.mode, info.uid, info.gid, info.mtime = mode, uid, gid, 1_000_000
    info.linkname = target
    info.devmajor, info.devminor = dev
    info.size = len(data) if kind == "file" else 0
    info.pax_headers = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape")
                        for k, v in (xattrs or {}).items()}
    return info, data


def make_tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def check_all(*members: tuple[tarfile.TarInfo, bytes], **kw: int) -> list[str]:
    checker = ArchiveChecker(**kw)
    return [checker.check(info) for info, _ in members]


# ---- checks (pure) ------------------------------------------------------------------------

def test_names_are_cleaned():
    assert clean_name("./a//b/") == "a/b"
    assert clean_name("./") == clean_name(".") == ""


@pytest.mark.parametrize(("members", "match"), [
    ([m("/etc/passwd")], "absolute path"),
    ([m("../evil")], r"'\.\.'"),
    ([m("a/../../evil")], r"'\.\.'"),
    ([m("link", "symlink", target="/tmp"), m("link/evil")], "beneath symlink 'link'"),
    ([m("d", "dir"), m("d/l", "symlink", target=".."), m("d/l/x/y")], "beneath symlink"),
    ([m("f"), m("f/x")], "not a directory"),
    ([m("h", "hardlink", target="/etc/shadow")], "absolute path"),
    ([m("h", "hardlink", target="../x")], r"'\.\.'"),
    ([m("h", "hardlink", target="missing")], "not an earlier file"),
    ([m("l", "symlink", target="/etc/shadow"), m("h", "hardlink", target="l")],
     "not an earlier file"),
    ([m("d", "dir"), m("d/f"), m("d", "symlink", target="/etc"),
      m("h", "hardlink", target="d/f")], "beneath symlink 'd'"),
    ([m("d", "dir"), m("d/f"), m("d"), m("h", "hardlink", target="d/f")], "not a directory"),
    ([m("sda", "blk", dev=(8, 0))], "block device 8:0"),
    ([m("null", "chr", dev=(1, 3))], "character device 1:3"),
    ([m("a/.wh..", )], "refusing a whiteout"),
    ([m(".wh.x", "dir")], "must be a plain file"),
])
def test_unsafe_members_are_refused(members, match):
    with pytest.raises(UnsafeArchive, match=match):
        check_all(*members)


def test_symlinks_may_point_anywhere_and_be_replaced_by_a_directory():
    assert check_all(m("bin/sh", "symlink", target="/bin/busybox"),
                     m("x", "symlink", target="/etc"), m("x", "dir"), m("x/ok"),
                     m("p", "fifo"), m("wh", "chr"), m("h", "hardlink", target="x/ok")
                     ) == ["bin/sh", "x", "x", "x/ok", "p", "wh", "h"]


def test_member_and_size_limits():
    with pytest.raises(UnsafeArchive, match="over 2 members"):
        check_all(m("a"), m("b"), m("c"), max_members=2)
    with pytest.raises(UnsafeArchive, match="over 10 bytes"):
        check_all(m("a", data=b"x" * 6), m("b", data=b"x" * 6), max_bytes=10)


# ---- unpacking ----------------------------------------------------------------------------

def unpack(tmp_path: Path, data: bytes) -> Path:
    dest = tmp_path / "layer"
    dest.mkdir()
    apply_tar(io.BytesIO(data), dest)
    return dest


def is_whiteout(path: Path) -> bool:
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)


@root_only
def test_whiteouts_become_overlay_char_devices_and_opaque_xattrs(tmp_path):
    dest = unpack(tmp_path, make_tar(
        m("etc", "dir", mode=0o755), m("etc/.wh.passwd"), m("etc/.wh.gone-dir"),
        m("var/.wh..wh..opq"), m("var/lib", "dir"), m(".wh.top"),
        m("a/.wh..wh.plnk"),  # AUFS bookkeeping: dropped
    ))
    assert is_whiteout(dest / "etc/passwd") and is_whiteout(dest / "etc/gone-dir")
    assert is_whiteout(dest / "top")
    assert not (dest / "etc/.wh.passwd").exists()
    assert os.getxattr(dest / "var", OPAQUE_XATTR) == b"y"
    assert (dest / "var/lib").is_dir()
    assert OPAQUE_XATTR not in os.listxattr(dest / "etc")
    assert list((dest / "a").iterdir()) == []


@root_only
def test_a_whiteout_does_not_hide_its_own_layers_file(tmp_path):
    dest = unpack(tmp_path, make_tar(m("f", data=b"mine"), m(".wh.f"),
                                     m(".wh.g"), m("g", data=b"later")))
    assert (dest / "f").read_bytes() == b"mine"
    assert (dest / "g").read_bytes() == b"later"


@root_only
def test_attributes_links_and_read_only_dirs(tmp_path):
    cap = b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    dest = unpack(tmp_path, make_tar(
        m("./", "dir", mode=0o755),
        m("ro", "dir", mode=0o555, uid=1000, gid=1000),
        m("ro/file", data=b"hello", mode=0o4755, uid=1000, gid=100,
          xattrs={"user.note": b"hi", "security.capability": cap,
                  "trusted.overlay.redirect": b"/etc"}),
        m("ro/hard", "hardlink", target="ro/file"),
        m("ro/sym", "symlink", target="/nowhere/at/all"),
        m("ro/fifo", "fifo", mode=0o600),
    ))
    f = dest / "ro/file"
    st = os.lstat(f)
    assert f.read_bytes() == b"hello"
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 100, 0o4755)
    assert st.st_mtime == 1_000_000 and st.st_nlink == 2
    assert os.lstat(dest / "ro/hard").st_ino == st.st_ino
    assert os.getxattr(f, "user.note") == b"hi"
    assert os.getxattr(f, "security.capability") == cap
    assert "trusted.overlay.redirect" not in os.listxattr(f)
    assert os.readlink(dest / "ro/sym") == "/nowhere/at/all"
    assert stat.S_ISFIFO(os.lstat(dest / "ro/fifo").st_mode)
    d = os.lstat(dest / "ro")
    assert (stat.S_IMODE(d.st_mode), d.st_uid, d.st_mtime) == (0o555, 1000, 1_000_000)


@root_only
def test_later_entry_replaces_earlier_and_dirs_merge(tmp_path):
    dest = unpack(tmp_path, make_tar(m("x", data=b"1"), m("x", "dir"), m("x/a"),
                                     m("x", "dir", mode=0o700), m("x/b"),
                                     m("y", "dir"), m("y", "symlink", target="x")))
    assert sorted(p.name for p in (dest / "x").iterdir()) == ["a", "b"]
    assert stat.S_IMODE(os.lstat(dest / "x").st_mode) == 0o700
    assert os.readlink(dest / "y") == "x"


@root_only
@pytest.mark.parametrize("members", [
    [m("../evil", data=b"x")],
    [m("/abs-evil", data=b"x")],
    [m("esc", "symlink", target="OUTSIDE"), m("esc/evil", data=b"x")],
    [m("dev/sda", "blk", dev=(8, 0))],
])
def test_refused_tars_write_nothing_outside(tmp_path, members):
    outside = tmp_path / "outside"
    outside.mkdir()
    members = [(i, d) for i, d in members]
    for info, _ in members:
        info.linkname = info.linkname.replace("OUTSIDE", str(outside))
    with pytest.raises(UnsafeArchive):
        unpack(tmp_path, make_tar(*members))
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "evil").exists() and not Path("/abs-evil").exists()


@root_only
def test_unpack_layer_checks_diff_id_and_leaves_no_partial_layer(tmp_path):
    data = make_tar(m("a", data=b"A"))
    blob = tmp_path / "blob"
    blob.write_bytes(gzip.compress(data))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    wrong = "sha256:" + "0" * 64
    with pytest.raises(InvalidImage, match="not its diff_id"):
        unpack_layer(blob, wrong, tmp_path / "final", tmp)
    assert not (tmp_path / "final").exists() and list(tmp.iterdir()) == []
    good = diff_id_of(blob, 1 << 20)
    unpack_layer(blob, good, tmp_path / "final", tmp)
    assert (tmp_path / "final/a").read_bytes() == b"A" and list(tmp.iterdir()) == []


def test_corrupt_gzip_is_an_invalid_image(tmp_path):
    blob = tmp_path / "blob"
    blob.write_bytes(gzip.compress(make_tar(m("a", data=b"A" * 1000)))[:-20])
    with pytest.raises(InvalidImage, match="corrupt or truncated"):
        diff_id_of(blob, 1 << 20)


def test_hashing_reader_enforces_its_limit():
    r = HashingReader(io.BytesIO(b"x" * 100), 50)
    with pytest.raises(InvalidImage, match="limit"):
        r.drain()


# ---- writing ------------------------------------------------------------------------------

def test_written_layers_are_reproducible_and_sorted(tmp_path):
    entries = [Entry("etc/passwd", "file", mode=0o644, data=b"root\n"),
               Entry("bin/sh", "symlink", target="busybox"), Entry("etc", "dir"),
               Entry("bin", "dir"), Entry("tmp", "dir", mode=0o1777)]
    a = write_layer(entries, tmp_path / "a")
    b = write_layer(list(reversed(entries)), tmp_path / "b")
    assert (a.descriptor, a.diff_id) == (b.descriptor, b.diff_id)
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
    assert diff_id_of(tmp_path / "a", 1 << 20) == a.diff_id
    with tarfile.open(tmp_path / "a") as tar:
        members = tar.getmembers()
    assert [x.name for x in members] == ["bin", "bin/sh", "etc", "etc/passwd", "tmp"]
    assert all((x.uid, x.gid, x.uname, x.gname, x.mtime) == (0, 0, "", "", 0)
               for x in members)
    assert members[-1].mode == 0o1777
