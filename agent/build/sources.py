"""COPY and ADD: which files a step copies, their digest for the cache key, and the layer
entries that put them at the destination with Docker's rules.

- Sources come from the context (skiff.build.safepath: globs with filepath.Match rules;
  absolute paths, `..` and symlinks leading out are refused) or, with `--from`, from
  another stage's or image's filesystem (absolute paths are allowed there, and symlinks
  resolve inside that filesystem, as in a chroot).
- A directory source copies its contents, not itself. The destination is a directory if
  it ends with `/`, is a directory in the image already, or the source is a directory;
  several sources need a destination ending with `/`. A relative destination is relative
  to WORKDIR. Symlinks in the destination path are followed inside the image.
- Owners are 0:0 unless `--chown` (numeric, or names from the image's /etc/passwd and
  /etc/group; a user without a group gets the gid equal to its uid, Docker's rule);
  `--chmod` sets every copied entry's mode. Modes and mtimes otherwise come from the
  source. Symlinks inside copied directories are copied as symlinks.
- Parent directories the image lacks are created 0755 root:root; ones it has are
  repeated in the layer with their current owner and mode.
- ADD unpacks a local tar archive (tar, gzip, bzip2, xz; judged by content) into the
  destination directory, keeping the archive's owners unless `--chown`.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.build.context_tar import is_tar_archive
from agent.images.fsutil import CHUNK
from agent.images.layerbuild import Entry
from agent.runtime.request import RequestError
from agent.runtime.users import read_in_rootfs, resolve_in_rootfs, resolve_user
from skiff.build.errors import SourceError
from skiff.build.safepath import expand_sources, is_remote, resolve_in_context


@dataclass(frozen=True)
class Source:
    pattern: str  # as written (expanded)
    match: str  # the context (or image) path it matched
    path: Path  # the real path on disk, symlinks resolved


def find_sources(root: Path, patterns: tuple[str, ...], *, in_context: bool,
                 keyword: str) -> list[Source]:
    """Blocking: every source the patterns name. SourceError (UnsafePath for escapes)
    naming the pattern when one is remote, unsafe, missing or matches nothing."""
    where = "the build context" if in_context else "the source image"
    found: list[Source] = []
    for pattern in patterns:
        if is_remote(pattern):
            raise SourceError(f"{keyword} {pattern}: remote sources (URLs, git) are not "
                              "supported; download the file in a RUN step or put it in the "
                              "build context")
        # In another image's filesystem an absolute path is the normal way to name a file.
        relative = pattern if in_context else pattern.lstrip("/") or "."
        matches = expand_sources(root, relative)
        if not matches:
            raise SourceError(f"{keyword} {pattern}: no file in {where} matches")
        for match in matches:
            path = resolve_in_context(root, match) if in_context else \
                resolve_in_rootfs(root, match)
            if not os.path.lexists(path):
                raise SourceError(f"{keyword} {pattern}: {match} not found in {where}")
            found.append(Source(pattern, match, path))
    return found


def _walk(top: Path) -> list[tuple[str, Path]]:
    """(relative path, full path) of everything under `top`, sorted, symlinks unfollowed."""
    out: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        rel = os.path.relpath(dirpath, top)
        for name in dirnames + filenames:
            sub = name if rel == "." else f"{rel}/{name}"
            out.append((sub, Path(dirpath) / name))
    return sorted(out)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def tree_digest(sources: list[Source]) -> str:
    """Blocking: sha256 over every source's path, type, mode, size, content and symlink
    target (no mtimes, no owners: see cache.py)."""
    h = hashlib.sha256()

    def add(rel: str, path: Path) -> None:
        st = os.lstat(path)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISREG(st.st_mode):
            h.update(f"f\0{rel}\0{mode:o}\0{st.st_size}\0{_file_digest(path)}\n".encode())
        elif stat.S_ISLNK(st.st_mode):
            h.update(f"l\0{rel}\0{os.readlink(path)}\n".encode())
        elif stat.S_ISDIR(st.st_mode):
            h.update(f"d\0{rel}\0{mode:o}\n".encode())

    for source in sources:
        h.update(f"source\0{source.match}\n".encode())
        add(".", source.path)
        if source.path.is_dir():
            for rel, path in _walk(source.path):
                add(rel, path)
    return "sha256:" + h.hexdigest()


def parse_chown(chown: str, rootfs: Path) -> tuple[int, int]:
    """Blocking: `--chown` as numeric ids, names looked up in the image at `rootfs`."""
    user, _, group = chown.partition(":")
    try:
        if user.isdigit():
            uid = int(user)
        else:
            uid = resolve_user(user, read_in_rootfs(rootfs, "/etc/passwd"), "").uid
        if not group:
            return uid, uid
        if group.isdigit():
            return uid, int(group)
        gid = resolve_user(f"0:{group}", "", read_in_rootfs(rootfs, "/etc/group")).gid
    except RequestError as exc:
        raise SourceError(f"--chown={chown}: {exc}") from None
    return uid, gid


def resolve_dest(dest: str, workdir: str) -> str:
    """The destination as an absolute, clean path (trailing slash kept: it matters)."""
    base = dest if dest.startswith("/") else posixpath.join(workdir or "/", dest)
    clean = posixpath.normpath(base)
    clean = "/" + clean.lstrip("/")
    return clean + "/" if dest.endswith("/") and clean != "/" else clean


def _in_image(rootfs: Path, path: str) -> str:
    """`path` with the symlinks of its directories resolved inside the image, relative to
    the image root ('' for the root itself)."""
    real = resolve_in_rootfs(rootfs, path)
    rel = os.path.relpath(real, rootfs)
    return "" if rel == "." else rel


@dataclass
class CopyJob:
    keyword: str  # COPY or ADD
    sources: list[Source]
    dest: str  # from resolve_dest
    owner: tuple[int, int] | None
    chmod: int | None
    unpack_archives: bool  # ADD from the context
    # Unpacks an archive into a fresh directory and returns it (the builder's work dir).
    unpack: Callable[[Path], Path] | None = None


def copy_entries(job: CopyJob, rootfs: Path) -> list[Entry]:
    """Blocking: the layer entries of a COPY/ADD onto the image at `rootfs`."""
    dest = job.dest
    dest_is_dir = dest.endswith("/") or (rootfs / _in_image(rootfs, dest)).is_dir()
    # Docker's rule, for sources named one by one or matched by a glob alike.
    if len(job.sources) > 1 and not dest.endswith("/"):
        raise SourceError(f"{job.keyword} with more than one source needs a destination "
                          f"directory ending with '/', not {dest!r}")
    entries: dict[str, Entry] = {}

    def keep_image_dir(rel: str) -> None:
        st = os.lstat(rootfs / rel)
        entries[rel] = Entry(rel, "dir", mode=stat.S_IMODE(st.st_mode), uid=st.st_uid,
                             gid=st.st_gid, mtime=int(st.st_mtime))

    def put(rel: str, path: Path, *, top: bool = False, owners: bool = False) -> None:
        st = os.lstat(path)
        mode = stat.S_IMODE(st.st_mode)
        if job.chmod is not None and not stat.S_ISLNK(st.st_mode):
            mode = job.chmod
        if job.owner is not None:
            uid, gid = job.owner
        elif owners:
            uid, gid = st.st_uid, st.st_gid
        else:
            uid, gid = 0, 0
        common = {"mode": mode, "uid": uid, "gid": gid, "mtime": int(st.st_mtime)}
        if stat.S_ISDIR(st.st_mode):
            entries[rel] = Entry(rel, "dir", **common)
        elif stat.S_ISREG(st.st_mode):
            entries[rel] = Entry(rel, "file", source=path, **common)
        elif stat.S_ISLNK(st.st_mode) and not top:
            entries[rel] = Entry(rel, "symlink", target=os.readlink(path), **common)
        # fifos, sockets and devices are not copied (a context never holds them)

    def put_tree(base: str, top: Path, owners: bool) -> None:
        if base:
            existing = rootfs / base
            if existing.is_dir() and not existing.is_symlink():
                keep_image_dir(base)  # an existing destination keeps its owner and mode
            else:
                put(base, top, top=True, owners=owners)
        for sub, path in _walk(top):
            put(f"{base}/{sub}" if base else sub, path, owners=owners)

    for source in job.sources:
        if source.path.is_dir():
            put_tree(_in_image(rootfs, dest), source.path, owners=False)
        elif job.unpack_archives and job.unpack is not None and is_tar_archive(source.path):
            put_tree(_in_image(rootfs, dest), job.unpack(source.path), owners=True)
        else:
            name = posixpath.basename(source.match)
            target = posixpath.join(dest, name) if dest_is_dir else dest
            parent, name = posixpath.split(target.rstrip("/"))
            where = _in_image(rootfs, parent)
            put(f"{where}/{name}" if where else name, source.path, top=True)
    entries.pop("", None)
    _add_parents(entries, rootfs)
    return sorted(entries.values(), key=lambda e: e.path)


def _add_parents(entries: dict[str, Entry], rootfs: Path) -> None:
    """Every parent directory of an entry, as the image has it or made 0755 root:root."""
    for path in list(entries):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            if parent in entries:
                continue
            try:
                st = os.lstat(rootfs / parent)
            except FileNotFoundError:
                entries[parent] = Entry(parent, "dir", mode=0o755)
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise SourceError(f"cannot copy to /{path}: /{parent} is not a directory in "
                                  "the image")
            entries[parent] = Entry(parent, "dir", mode=stat.S_IMODE(st.st_mode),
                                    uid=st.st_uid, gid=st.st_gid, mtime=int(st.st_mtime))


def mkdir_entries(rootfs: Path, path: str) -> list[Entry]:
    """Blocking: the layer entries that make directory `path` (WORKDIR) in the image at
    `rootfs`, or [] when it is a directory there already."""
    real = _in_image(rootfs, path)
    if not real or (rootfs / real).is_dir():
        return []
    entries = {real: Entry(real, "dir", mode=0o755)}
    _add_parents(entries, rootfs)
    return sorted(entries.values(), key=lambda e: e.path)
