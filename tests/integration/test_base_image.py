"""deploy/base-image.sh: a Debian bookworm base image by debootstrap, cached and made once.

The rootfs tarball cache is the script's default ($SKIFF_CACHE_DIR, else /var/cache/skiff),
shared with an admin's own runs and with later test runs on the same machine: only the
first pays for debootstrap (about a minute against deb.debian.org), later ones import the
cached tarball (about 10 s). Skipped, saying why, when debootstrap cannot run or cannot
reach the mirror and nothing is cached.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from agent.images.store import ImageStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "base-image.sh"
CACHE = Path(os.environ.get("SKIFF_CACHE_DIR", "/var/cache/skiff"))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "SKIFF_CACHE_DIR": str(CACHE)}, check=False)


def _cannot_make_one() -> str | None:
    """Why debootstrap cannot run here, or None (also None when a tarball is cached)."""
    if any(CACHE.glob("debian-bookworm-minbase-*.tar.gz")):
        return None
    if os.geteuid() != 0:
        return "debootstrap needs root and nothing is cached"
    if shutil.which("debootstrap") is None:
        return "debootstrap is not installed (deploy/setup.sh installs it)"
    mirror = _run("--print-mirror").stdout.strip()
    try:
        with urllib.request.urlopen(f"{mirror}/dists/bookworm/Release", timeout=10):
            return None
    except (urllib.error.URLError, OSError) as exc:
        return f"debootstrap cannot reach the Debian mirror {mirror}: {exc}"


@pytest.mark.timeout(900)
def test_base_image_made_once_and_cached(tmp_path: Path) -> None:
    reason = _cannot_make_one()
    if reason:
        pytest.skip(reason)
    store = tmp_path / "images"
    started = time.monotonic()
    first = _run("--store", str(store))
    took = time.monotonic() - started
    assert first.returncode == 0, first.stdout + first.stderr
    assert "base-image: imported debian:bookworm@sha256:" in first.stdout
    print(f"first run: {took:.0f}s\n{first.stdout}")

    image = asyncio.run(ImageStore(store).resolve("debian:bookworm"))
    assert image is not None and len(image.layers) == 1
    assert image.config.cmd == ("sh",) and image.size > 20_000_000
    layer = store / "blobs" / "sha256" / image.layers[0].hex
    with gzip.open(layer) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
        names = {m.name for m in tar}
    assert {"etc/debian_version", "usr/bin/apt-get", "usr/bin/dpkg"} <= names
    assert not [n for n in names if n.startswith("var/lib/apt/lists/")
                and n.endswith("_Packages")]  # package lists are left out

    # Again into the same store: the image is there, nothing is done.
    again = _run("--store", str(store))
    assert again.returncode == 0 and "nothing to do" in again.stdout, again
    assert "debootstrap" not in again.stdout

    # Into a fresh store with the tarball cached: imported, no debootstrap, same image.
    if "debootstrap" in first.stdout:  # else the first run proved the cache already
        other = _run("--store", str(tmp_path / "other"))
        assert other.returncode == 0, other.stdout + other.stderr
        assert "using the cached rootfs" in other.stdout
        assert "debootstrap" not in other.stdout
        assert image.digest in other.stdout  # the same tarball gives the same image
