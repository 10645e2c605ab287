"""Packing the build context: .dockerignore honoured, deterministic tar, size limit checked
before anything is written, and the COPY source checks."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import tarfile
from pathlib import Path

import pytest

from skiff.build import (
    ContextError,
    ContextStream,
    ContextTooLarge,
    IgnoreRules,
    SourceError,
    UnsafePath,
    check_source_pattern,
    expand_sources,
    has_glob,
    is_remote,
    load_ignore,
    pack_context,
    resolve_in_context,
    scan_context,
    write_context,
)
from skiff.build.errors import format_size


def tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data)
        else:
            path.write_bytes(data)
    return root


def paths(root: Path, ignore: str | None = None) -> list[str]:
    rules = IgnoreRules.parse(ignore) if ignore is not None else None
    return [e.path for e in scan_context(root, rules).entries]


def test_walk_is_sorted_with_directories_first(tmp_path: Path):
    tree(tmp_path, {"b.txt": "b", "a/z": "z", "a/c/d": "d", "Dockerfile": "FROM x\n"})
    assert paths(tmp_path) == ["Dockerfile", "a", "a/c", "a/c/d", "a/z", "b.txt"]


def test_ignore_rules_apply(tmp_path: Path):
    tree(tmp_path, {"app.py": "", "x.pyc": "", "pkg/y.pyc": "", "pkg/m.py": "",
                    "node_modules/a/b.js": "", "node_modules/keep/k.js": "",
                    ".git/HEAD": "", "Dockerfile": "", ".dockerignore": ""})
    ignore = ("**/*.pyc\n.git\nnode_modules\n!node_modules/keep\nDockerfile\n"
              ".dockerignore\n")
    assert paths(tmp_path, ignore) == ["app.py", "node_modules", "node_modules/keep",
                                       "node_modules/keep/k.js", "pkg", "pkg/m.py"]


def test_reincluded_file_brings_its_parent_dirs(tmp_path: Path):
    tree(tmp_path, {"build/a/b/keep.txt": "k", "build/a/b/drop.txt": "d", "build/x": ""})
    assert paths(tmp_path, "build\n!build/a/b/keep.txt\n") == [
        "build", "build/a", "build/a/b", "build/a/b/keep.txt"]


def test_excluded_directory_without_exceptions_is_not_walked(tmp_path: Path, monkeypatch):
    tree(tmp_path, {"big/f": "x", "ok": "", "keep/a/b": ""})
    listed: list[str] = []
    real = os.listdir

    def spy(path):
        listed.append(os.path.relpath(path, tmp_path))
        return real(path)

    monkeypatch.setattr(os, "listdir", spy)
    assert paths(tmp_path, "big\nkeep\n!keep/a/b\n") == ["keep", "keep/a", "keep/a/b", "ok"]
    assert sorted(listed) == [".", "keep", "keep/a"]


def test_unreadable_entries_are_refused(tmp_path: Path, monkeypatch):
    tree(tmp_path, {"d/f": "x"})

    def denied(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "listdir", denied)
    with pytest.raises(ContextError, match=r"cannot read \. in the build context: Permission"):
        scan_context(tmp_path)


def test_tar_holds_modes_mtimes_symlinks_and_root_ownership(tmp_path: Path):
    tree(tmp_path, {"bin/run.sh": "#!/bin/sh\n", "data.txt": "hello"})
    os.chmod(tmp_path / "bin/run.sh", 0o755)
    os.chmod(tmp_path / "data.txt", 0o640)
    os.utime(tmp_path / "data.txt", (1_600_000_000, 1_600_000_000.7))
    os.symlink("data.txt", tmp_path / "link")
    os.symlink("/etc/passwd", tmp_path / "outside")  # sent as is; COPY checks it later
    out = io.BytesIO()
    listing, packed = pack_context(tmp_path, out)
    raw = out.getvalue()
    assert packed.size == len(raw) and len(raw) % tarfile.RECORDSIZE == 0
    assert packed.digest == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert listing.total_size == len("#!/bin/sh\n") + len("hello")
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert list(members) == ["bin", "bin/run.sh", "data.txt", "link", "outside"]
        data = members["data.txt"]
        assert (data.mode, data.mtime, data.uid, data.gid, data.uname) == (
            0o640, 1_600_000_000, 0, 0, "")
        assert members["bin/run.sh"].mode == 0o755 and members["bin"].isdir()
        assert members["link"].issym() and members["link"].linkname == "data.txt"
        assert members["outside"].linkname == "/etc/passwd"
        assert tar.extractfile("data.txt").read() == b"hello"


def test_tar_is_deterministic_and_tracks_content(tmp_path: Path):
    tree(tmp_path, {"a": "1", "d/b": "2" * 5000})
    first = write_context(scan_context(tmp_path), io.BytesIO())
    again = write_context(scan_context(tmp_path), io.BytesIO())
    assert first == again
    (tmp_path / "a").write_text("changed")
    os.utime(tmp_path / "a", (0, 0))
    assert write_context(scan_context(tmp_path), io.BytesIO()).digest != first.digest


def test_stream_in_chunks_matches_file(tmp_path: Path):
    tree(tmp_path, {"big": os.urandom(300_000), "small": "x"})
    listing = scan_context(tmp_path)
    stream = ContextStream(listing, chunk_size=65536)
    assert stream.digest is None
    chunks = list(stream)
    assert max(len(c) for c in chunks) <= 65536
    out = io.BytesIO()
    packed = write_context(listing, out)
    assert b"".join(chunks) == out.getvalue()
    assert (stream.digest, stream.size) == (packed.digest, packed.size)


def test_size_limit_is_checked_while_walking(tmp_path: Path):
    tree(tmp_path, {"a": b"x" * 600, "b": b"y" * 600, "ignored.iso": b"z" * 5000})
    with pytest.raises(ContextTooLarge) as info:
        scan_context(tmp_path, IgnoreRules.parse("*.iso\n"), limit=1000)
    assert (info.value.size, info.value.limit) == (1200, 1000)
    assert "over the 1000 B limit (1000 bytes): at least 1200 bytes" in str(info.value)
    out = io.BytesIO()
    with pytest.raises(ContextTooLarge):
        pack_context(tmp_path, out, IgnoreRules.parse("*.iso\n"), limit=1000)
    assert out.getvalue() == b""  # refused before a byte was written
    assert scan_context(tmp_path, IgnoreRules.parse("*.iso\n"), limit=1200).total_size == 1200


def test_format_size():
    assert format_size(1 << 30) == "1 GiB"
    assert format_size(1536) == "1.5 KiB"
    assert format_size(5 << 40) == "5120 GiB"


def test_file_changed_while_packing(tmp_path: Path):
    tree(tmp_path, {"a": "12345"})
    listing = scan_context(tmp_path)
    (tmp_path / "a").write_text("12")
    with pytest.raises(ContextError, match="a shrank while the build context"):
        write_context(listing, io.BytesIO())
    (tmp_path / "a").write_text("1234567")
    with pytest.raises(ContextError, match="a grew while"):
        write_context(listing, io.BytesIO())
    (tmp_path / "a").unlink()
    with pytest.raises(ContextError, match="cannot read a in the build context"):
        write_context(listing, io.BytesIO())


def test_sockets_are_skipped(tmp_path: Path):
    tree(tmp_path, {"a": ""})
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "s.sock"))
        listing = scan_context(tmp_path)
    finally:
        sock.close()
    assert [e.path for e in listing.entries] == ["a"] and listing.skipped == ("s.sock",)


def test_missing_context(tmp_path: Path):
    with pytest.raises(ContextError, match="is not a directory"):
        scan_context(tmp_path / "nope")


def test_load_ignore_then_scan(tmp_path: Path):
    tree(tmp_path, {".dockerignore": "*.log\n", "a.log": "", "b": ""})
    assert [e.path for e in scan_context(tmp_path, load_ignore(tmp_path)).entries] == [
        ".dockerignore", "b"]


# --- COPY source checks -------------------------------------------------------------------

@pytest.mark.parametrize("source, clean", [
    (".", "."), ("./", "."), ("src//a/./b", "src/a/b"), ("a/../b", "b"), ("*.py", "*.py"),
    ("a/..", "."),
])
def test_check_source_pattern_ok(source, clean):
    assert check_source_pattern(source) == clean


@pytest.mark.parametrize("source, message", [
    ("/etc/passwd", "is an absolute path"),
    ("..", "outside the build context"),
    ("../x", "outside the build context"),
    ("a/../../x", "outside the build context"),
    ("", "empty"),
    ("a\x00b", "NUL"),
])
def test_check_source_pattern_refused(source, message):
    with pytest.raises(UnsafePath, match=message):
        check_source_pattern(source)


def test_resolve_follows_symlinks_inside_the_context(tmp_path: Path):
    tree(tmp_path, {"real/file": "x", "other/y": ""})
    os.symlink("real", tmp_path / "alias")
    os.symlink("../real/file", tmp_path / "other/up")
    os.symlink("alias", tmp_path / "chain")
    assert resolve_in_context(tmp_path, "alias/file") == tmp_path / "real/file"
    assert resolve_in_context(tmp_path, "other/up") == tmp_path / "real/file"
    assert resolve_in_context(tmp_path, "chain/file") == tmp_path / "real/file"
    assert resolve_in_context(tmp_path, "alias", follow_last=False) == tmp_path / "alias"
    assert resolve_in_context(tmp_path, "missing/x") == tmp_path / "missing/x"
    assert resolve_in_context(tmp_path, ".") == tmp_path


def test_resolve_refuses_symlinks_leading_out(tmp_path: Path):
    tree(tmp_path, {"d/f": ""})
    os.symlink("/etc", tmp_path / "etc")
    os.symlink("../../outside", tmp_path / "d/up")
    os.symlink("loop", tmp_path / "loop")
    with pytest.raises(UnsafePath, match="etc is a symlink to /etc, an absolute path"):
        resolve_in_context(tmp_path, "etc/passwd")
    with pytest.raises(UnsafePath, match="etc is a symlink to /etc"):
        resolve_in_context(tmp_path, "etc")
    with pytest.raises(UnsafePath, match=r"d/up is a symlink to \.\./\.\./outside, outside"):
        resolve_in_context(tmp_path, "d/up")
    with pytest.raises(UnsafePath, match="too many levels of symlinks"):
        resolve_in_context(tmp_path, "loop")
    with pytest.raises(UnsafePath, match="absolute path"):
        resolve_in_context(tmp_path, "/d/f")
    # not followed when the last component stays a symlink
    assert resolve_in_context(tmp_path, "etc", follow_last=False) == tmp_path / "etc"


def test_is_remote():
    assert is_remote("https://example.com/a.tgz") and is_remote("git@github.com:a/b.git")
    assert not is_remote("src/http.py")


def test_expand_sources(tmp_path: Path):
    tree(tmp_path, {"a.py": "", "b.py": "", "c.txt": "", "pkg/d.py": "", "pkg/sub/e.py": "",
                    "lib/f.py": "", "[x].txt": ""})
    os.symlink("pkg", tmp_path / "linked")
    assert expand_sources(tmp_path, "*.py") == ["a.py", "b.py"]
    assert expand_sources(tmp_path, "./*/*.py") == ["lib/f.py", "pkg/d.py"]
    assert expand_sources(tmp_path, "**/*.py") == ["lib/f.py", "pkg/d.py"]  # ** is * here
    assert expand_sources(tmp_path, "?.txt") == ["c.txt"]
    assert expand_sources(tmp_path, "[ab].py") == ["a.py", "b.py"]
    assert expand_sources(tmp_path, "\\[x].txt") == ["[x].txt"]
    assert expand_sources(tmp_path, "nothing*") == []
    assert expand_sources(tmp_path, "pkg/../c.txt") == ["c.txt"]
    assert expand_sources(tmp_path, "missing") == ["missing"]
    assert expand_sources(tmp_path, "l*") == ["lib", "linked"]
    with pytest.raises(SourceError, match="never closed"):
        expand_sources(tmp_path, "[ab.py")
    with pytest.raises(UnsafePath):
        expand_sources(tmp_path, "../*.py")
    assert has_glob("a/*.py") and not has_glob("a/b.py")
