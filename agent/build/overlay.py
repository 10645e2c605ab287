"""Overlay mounts for the build: a writable one for each RUN (the parent's layers under a
fresh upper dir) and read-only views (a COPY's destination image, a `--from` source).

Lower dirs are given to the kernel through a directory of one-character-ish symlinks
(`links/0`, `links/1`, ...) with `mount` run in that directory, so the options stay far
below the kernel's page-size limit even for 127 layers with long store paths (Docker's
overlay2 driver does the same with its `l/` directory)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from agent.images import fsutil

MAX_OPTIONS = 4000  # the kernel takes one page of mount data


class MountError(RuntimeError):
    pass


async def _run(*argv: str, cwd: Path | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, cwd=str(cwd) if cwd else None)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace").strip()


def _prepare(base: Path, lowers: list[Path], writable: bool) -> str:
    links = base / "links"
    links.mkdir(parents=True, exist_ok=True)
    names = []
    for i, lower in enumerate(lowers):
        link = links / str(i)
        link.unlink(missing_ok=True)
        link.symlink_to(lower)
        names.append(str(i))
    (base / "rootfs").mkdir(exist_ok=True)
    options = f"lowerdir={':'.join(names)}"
    if writable:
        for d in ("upper", "work"):
            (base / d).mkdir(exist_ok=True)
        (base / "upper").chmod(0o755)
        options += f",upperdir={base / 'upper'},workdir={base / 'work'}"
    if len(options) > MAX_OPTIONS:
        raise MountError(f"overlay options too long ({len(options)} bytes)")
    return options


async def mount(base: Path, lowers: list[Path], *, writable: bool) -> Path:
    """Mount the overlay at `base/rootfs` (upper and work dirs in `base` when writable);
    `lowers` topmost first. An image with no layers gets an empty lower dir."""
    if not lowers:
        empty = base / "empty"
        await asyncio.to_thread(empty.mkdir, parents=True, exist_ok=True)
        lowers = [empty]
    if not writable and len(lowers) == 1:
        # overlayfs needs two lowers without an upper; one layer is its own view.
        return lowers[0]
    options = await asyncio.to_thread(_prepare, base, lowers, writable)
    target = base / "rootfs"
    code, out = await _run("mount", "-t", "overlay", "overlay", "-o", options, str(target),
                           cwd=base / "links")
    if code != 0:
        raise MountError(f"cannot mount the build's overlay at {target}: {out}")
    return target


async def unmount(target: Path) -> None:
    """Unmount if mounted (lazily if busy); safe to repeat."""
    if not await asyncio.to_thread(os.path.ismount, target):
        return
    code, out = await _run("umount", str(target))
    if code != 0 and await asyncio.to_thread(os.path.ismount, target):
        code, out = await _run("umount", "-l", str(target))
        if code != 0:
            raise MountError(f"cannot unmount {target}: {out}")


@contextlib.asynccontextmanager
async def view(base: Path, lowers: list[Path]) -> AsyncIterator[Path]:
    """A read-only view of an image's filesystem for the duration of the block; `base`
    (a fresh directory) is removed afterwards."""
    try:
        yield await mount(base, lowers, writable=False)
    finally:
        try:
            await unmount(base / "rootfs")
        finally:
            await asyncio.to_thread(remove_unmounted, base)


def remove_unmounted(path: Path) -> None:
    """rm -rf that refuses to descend into a mount point (a lower layer seen through a
    mount must never be deleted by a cleanup)."""
    if not os.path.lexists(path):
        return
    if os.path.ismount(path):
        raise MountError(f"{path} is still mounted; not removing it")
    if path.is_dir() and not path.is_symlink():
        for entry in list(os.scandir(path)):
            remove_unmounted(Path(entry.path))
        path.rmdir()
    else:
        fsutil.remove_tree(path)
