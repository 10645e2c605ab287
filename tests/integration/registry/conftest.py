"""A real registry (Debian's docker-registry) per test: a free port, a temp storage dir
and config, stopped and removed afterwards whatever the test did. Readiness is polled
against /v2/ with a deadline. Also: a busybox image in a source store, and an empty
second store to pull into."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.images.busybox import build_busybox_image
from agent.images.models import Image
from agent.images.registry import RegistryOptions, RetryPolicy
from agent.images.store import ImageStore
from controller.store.etcd_server import free_port

REGISTRY_BIN = shutil.which("docker-registry")
needs_registry = pytest.mark.skipif(REGISTRY_BIN is None,
                                    reason="docker-registry not installed (deploy/setup.sh)")
READY_DEADLINE = 20.0
# Short back-offs: tests that fail on purpose should not wait out production delays.
FAST_RETRY = RetryPolicy(attempts=3, backoff=0.05, max_backoff=0.2, connect_timeout=5)


@dataclass
class Registry:
    addr: str          # 127.0.0.1:PORT
    storage: Path      # the filesystem driver's root
    log: Path

    def blob_data(self, digest: str) -> Path:
        """Where the filesystem driver keeps a blob's bytes."""
        hexd = digest.removeprefix("sha256:")
        return (self.storage / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexd[:2]
                / hexd / "data")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # 401 from an auth-enabled registry: it is up
    except OSError:
        return False


@contextlib.contextmanager
def run_registry(base: Path, auth: dict[str, Any] | None = None) -> Iterator[Registry]:
    assert REGISTRY_BIN is not None
    port = free_port()
    storage = base / "data"
    storage.mkdir(parents=True)
    config: dict[str, Any] = {
        "version": 0.1, "log": {"level": "info"},
        "storage": {"filesystem": {"rootdirectory": str(storage)},
                    "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if auth:
        config["auth"] = auth
    cfg = base / "config.yml"
    cfg.write_text(json.dumps(config, indent=1))  # JSON is YAML
    log = base / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([REGISTRY_BIN, "serve", str(cfg)], stdout=out, stderr=out,
                                stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + READY_DEADLINE
        while not _answers(f"http://127.0.0.1:{port}/v2/"):
            if time.monotonic() > deadline:
                pytest.fail(f"docker-registry not ready in {READY_DEADLINE}s:\n"
                            f"{log.read_text()}")
            # Waiting on the process is the poll interval: it returns at once if the
            # registry died (a bad config), instead of polling a corpse until the deadline.
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.05)
                pytest.fail(f"docker-registry exited {proc.returncode}:\n{log.read_text()}")
        yield Registry(f"127.0.0.1:{port}", storage, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def workdir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="skiff-registry-"))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def registry(workdir: Path) -> Iterator[Registry]:
    with run_registry(workdir / "registry") as reg:
        yield reg


@pytest.fixture
def options() -> RegistryOptions:
    return RegistryOptions(retry=FAST_RETRY)


@pytest.fixture
def src_store(workdir: Path) -> ImageStore:
    return ImageStore(workdir / "src")


@pytest.fixture
def dst_store(workdir: Path) -> ImageStore:
    return ImageStore(workdir / "dst")


@pytest.fixture
async def busybox(src_store: ImageStore) -> AsyncIterator[Image]:
    yield await build_busybox_image(src_store)
