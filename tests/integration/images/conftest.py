"""Fixtures for the image store against the real filesystem, as root: a store in a temp
dir, the busybox image, overlay mounts that are always unmounted, tar builders."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agent.images.busybox import build_busybox_image
from agent.images.models import Image
from agent.images.oci import ANNOTATION_REF, MT_OCI_INDEX
from agent.images.store import ImageStore

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, overlay)")


def _mounts_under(base: Path) -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point == str(base) or point.startswith(str(base) + "/"):
            points.append(point)
    return points


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A temp dir removed afterwards, with anything mounted below it unmounted first,
    whatever the test did."""
    base = Path(tempfile.mkdtemp(prefix="skiff-images-"))
    try:
        yield base
    finally:
        for point in sorted(_mounts_under(base), key=len, reverse=True):
            if subprocess.run(["umount", point], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def store(workdir: Path) -> ImageStore:
    return ImageStore(workdir / "store")


@pytest.fixture
async def busybox(store: ImageStore) -> AsyncIterator[Image]:
    yield await build_busybox_image(store)


@contextlib.contextmanager
def overlay(lowers: list[Path], base: Path) -> Iterator[tuple[Path, Path]]:
    """Mount lowers (topmost first) with a fresh upper dir; yields (merged, upper)."""
    upper, work, merged = base / "upper", base / "work", base / "merged"
    for d in (upper, work, merged):
        d.mkdir(parents=True)
    opts = f"lowerdir={':'.join(map(str, lowers))},upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)],
                   check=True, capture_output=True)
    try:
        yield merged, upper
    finally:
        subprocess.run(["umount", str(merged)], check=True)


async def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A command run off the event loop, output captured as text."""
    return await asyncio.to_thread(subprocess.run, list(args), capture_output=True,
                                   text=True, timeout=timeout)


def lexists(path: Path | str) -> bool:
    """Whether anything, a dangling symlink or a whiteout included, is at `path`."""
    return os.path.lexists(path)


def blob_names(store: ImageStore) -> list[str]:
    return sorted(p.name for p in store.blobs.iterdir())


def layer_names(store: ImageStore) -> list[str]:
    return sorted(p.name for p in store.layers.iterdir())


def export_layout(store: ImageStore, image: Image, dest: Path, name: str | None) -> Path:
    """Write `image` as a standalone OCI layout at `dest` (what skopeo would produce)."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    assert image.config_descriptor is not None
    for digest in [image.digest, image.config_descriptor.digest,
                   *(x.digest for x in image.layers)]:
        shutil.copyfile(store.blob_path(digest), blobs / digest[7:])
    desc = {"mediaType": image.manifest_media_type, "digest": image.digest,
            "size": store.blob_path(image.digest).stat().st_size}
    if name:
        desc["annotations"] = {ANNOTATION_REF: name}
    (dest / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (dest / "index.json").write_text(json.dumps(
        {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": [desc]}))
    return dest


def tar_dir(src: Path, out: Path, mode: str = "w") -> Path:
    with tarfile.open(out, mode) as tar:
        for p in sorted(src.rglob("*")):
            tar.add(p, arcname=str(p.relative_to(src)), recursive=False)
    return out


def tar_of(out: Path, *members: tuple[str, str, str]) -> Path:
    """A tar of (name, kind, data-or-target) members: kind file, dir or symlink."""
    with tarfile.open(out, "w") as tar:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            info.mode = 0o755 if kind == "dir" else 0o644
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
            else:
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value.encode()))
    return out
