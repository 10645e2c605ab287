"""A busybox base image made on this node from Debian's busybox-static, since no image
can be pulled from Docker Hub here.

The rootfs: /bin/busybox plus a symlink in /bin for every applet `busybox --list` prints,
/usr/bin/env (for `#!/usr/bin/env` scripts), /etc/passwd (root, nobody), /etc/group, empty
/proc /sys /dev /root /etc, /tmp with mode 1777. The layer tar is reproducible (sorted
entries, mtime 0, uid/gid 0, gzip without name or time) and so is the JSON (sorted keys,
fixed `created`), so the same busybox binary always gives the same image digest, and
building again adds no blobs.

    python -m agent.images.busybox [--store DIR] [--busybox PATH] [--ref NAME:TAG]

(deploy/make-busybox-image.sh runs this.)
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from pathlib import Path

from agent.images.errors import ImageError
from agent.images.importer import DEFAULT_PATH_ENV, ROOTFS_CREATED
from agent.images.layerbuild import BuiltLayer, Entry, write_layer
from agent.images.models import Image
from agent.images.oci import make_config, make_manifest
from agent.images.store import ImageStore

DEFAULT_STORE = Path("/var/lib/skiff/images")
DEFAULT_BUSYBOX = Path("/bin/busybox")
DEFAULT_REF = "busybox:latest"

PASSWD = (b"root:x:0:0:root:/root:/bin/sh\n"
          b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = b"root:x:0:\nnobody:x:65534:\n"


def busybox_entries(busybox: Path) -> tuple[list[Entry], str]:
    """The rootfs entries and the busybox version line (blocking: runs busybox)."""
    listing = subprocess.run([str(busybox), "--list"], capture_output=True, text=True,
                             check=True, timeout=30).stdout
    applets = sorted({a for a in listing.split() if a and a != "busybox" and "/" not in a})
    banner = subprocess.run([str(busybox)], capture_output=True, text=True,
                            timeout=30).stdout.splitlines()
    version = banner[0].strip() if banner else "BusyBox"
    entries = [Entry(d, "dir", mode=0o755) for d in
               ("bin", "dev", "etc", "proc", "root", "sys", "usr", "usr/bin")]
    entries[entries.index(Entry("root", "dir", mode=0o755))] = Entry("root", "dir", mode=0o700)
    entries.append(Entry("tmp", "dir", mode=0o1777))
    entries.append(Entry("bin/busybox", "file", mode=0o755, data=busybox.read_bytes()))
    entries += [Entry(f"bin/{a}", "symlink", mode=0o777, target="busybox") for a in applets]
    entries.append(Entry("usr/bin/env", "symlink", mode=0o777, target="../../bin/busybox"))
    entries.append(Entry("etc/passwd", "file", mode=0o644, data=PASSWD))
    entries.append(Entry("etc/group", "file", mode=0o644, data=GROUP))
    return entries, version


async def build_busybox_image(store: ImageStore, busybox: Path = DEFAULT_BUSYBOX,
                              ref: str = DEFAULT_REF) -> Image:
    """Build the busybox image and tag it `ref` in `store`; returns the stored image."""
    await store.open()
    out = store.temp_path("busybox-layer")

    def build() -> tuple[BuiltLayer, str]:
        if not busybox.is_file():
            raise FileNotFoundError(f"{busybox} not found: install busybox-static "
                                    "(deploy/setup.sh does)")
        entries, version = busybox_entries(busybox)
        return write_layer(entries, out), version

    try:
        built, version = await asyncio.to_thread(build)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    config = make_config([built.diff_id], created=ROOTFS_CREATED,
                         created_by=f"skiff make-busybox-image ({version})",
                         env=[DEFAULT_PATH_ENV], cmd=["sh"],
                         labels={"org.opencontainers.image.title": "busybox",
                                 "org.opencontainers.image.description": version})
    manifest = make_manifest(config, [built.descriptor])
    return await store.add_image(manifest, config, [out], ref=ref)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="make-busybox-image",
                                description="Build busybox:latest from busybox-static into "
                                            "a skiff image store.")
    p.add_argument("--store", type=Path, default=DEFAULT_STORE,
                   help=f"image store root (default {DEFAULT_STORE})")
    p.add_argument("--busybox", type=Path, default=DEFAULT_BUSYBOX,
                   help=f"static busybox binary (default {DEFAULT_BUSYBOX})")
    p.add_argument("--ref", default=DEFAULT_REF, help=f"tag (default {DEFAULT_REF})")
    args = p.parse_args(argv)
    try:
        image = asyncio.run(build_busybox_image(ImageStore(args.store), args.busybox,
                                                args.ref))
    except (ImageError, OSError, subprocess.SubprocessError) as exc:
        print(f"make-busybox-image: {exc}", file=sys.stderr)
        return 1
    print(f"{image.ref} {image.digest} ({image.size} bytes) in {args.store}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
