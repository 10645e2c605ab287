"""A container's root filesystem: the image's layers read-only under an overlay, with one
writable upper directory of its own (kept across restarts of the same task, as Docker
keeps a container's changes across `docker restart`)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path


class RootfsError(RuntimeError):
    pass


async def _run(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace").strip()


async def mount(container_dir: Path, lower: list[Path]) -> Path:
    """Mount (or find mounted) the overlay at ``<container_dir>/rootfs``."""
    target = container_dir / "rootfs"
    if await asyncio.to_thread(os.path.ismount, target):
        return target
    upper, work = container_dir / "upper", container_dir / "work"
    for d in (upper, work, target):
        await asyncio.to_thread(d.mkdir, parents=True, exist_ok=True)
    if not lower:
        raise RootfsError("the image has no layers")
    options = f"lowerdir={':'.join(str(p) for p in lower)},upperdir={upper},workdir={work}"
    if len(options) > 4000:
        raise RootfsError(f"image has too many layers for one overlay mount ({len(lower)})")
    code, out = await _run("mount", "-t", "overlay", "overlay", "-o", options, str(target))
    if code != 0:
        raise RootfsError(f"cannot mount the container's root filesystem: {out}")
    return target


async def unmount(container_dir: Path) -> None:
    """Unmount if mounted; safe to call again."""
    target = container_dir / "rootfs"
    if not await asyncio.to_thread(os.path.ismount, target):
        return
    code, out = await _run("umount", str(target))
    if code != 0 and await asyncio.to_thread(os.path.ismount, target):
        # Busy (a process still holds it): detach it now; the kernel frees it after.
        code, out = await _run("umount", "-l", str(target))
        if code != 0:
            raise RootfsError(f"cannot unmount {target}: {out}")
