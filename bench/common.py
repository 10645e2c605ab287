"""Shared pieces of the benchmarks: percentiles, a private etcd, a controller process."""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.settings import AgentSettings
from controller.store.etcd_server import EtcdProcess, free_port, start_etcd


def percentile(samples: list[float], p: float) -> float:
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[int(p) - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


@dataclass
class Cluster:
    etcd: EtcdProcess
    url: str
    token: str


@contextlib.contextmanager
def local_cluster(*controller_args: str) -> Iterator[Cluster]:
    """A private etcd and a controller process, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="skiff-bench-") as tmp:
        base = Path(tmp)
        etcd = start_etcd(base / "etcd", log_path=base / "etcd.log")
        port = free_port("127.0.0.1")
        log = open(base / "controller.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [sys.executable, "-m", "skiff.cli.main", "controller",
             "--etcd", f"127.0.0.1:{etcd.port}", "--listen", f"127.0.0.1:{port}",
             "--state-dir", str(base / "controller"), *controller_args],
            stdout=log, stderr=log)
        try:
            url = f"http://127.0.0.1:{port}"
            token = _wait_ready(url, base / "controller" / "admin.token", proc)
            yield Cluster(etcd, url, token)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
            etcd.stop()


def _wait_ready(url: str, token_file: Path, proc: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the controller exited during start-up")
        if token_file.exists():
            token = token_file.read_text().strip()
            req = urllib.request.Request(url + "/healthz",
                                         headers={"Authorization": f"Bearer {token}"})
            with contextlib.suppress(urllib.error.URLError, OSError), \
                    urllib.request.urlopen(req, timeout=1):
                return token
        time.sleep(0.05)
    raise RuntimeError("the controller did not become ready within 30 s")


@contextlib.contextmanager
def local_node(cluster: Cluster, base: Path) -> Iterator[AgentSettings]:
    """An agent process on this machine with a network of its own, removed afterwards."""
    import asyncio
    import secrets

    from agent.images.busybox import build_busybox_image
    from agent.images.store import ImageStore
    from agent.teardown import teardown

    tag = secrets.token_hex(3)
    name = f"bench-{tag}"
    settings = AgentSettings(
        server=cluster.url, token=cluster.token, name=name, state_dir=base / "agent",
        port=free_port("127.0.0.1"), subnet="10.199.7.0/24", bridge=f"skb{tag}",
        nft_table=f"skb{tag}", netns_prefix=f"skb{tag}-", cgroup_parent=f"skiff/{name}")
    asyncio.run(build_busybox_image(ImageStore(settings.images)))
    log = open(base / "agent.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "skiff.cli.main", "agent", "--server", cluster.url,
         "--token", cluster.token, "--name", name, "--state-dir", str(settings.state_dir),
         "--port", str(settings.port), "--subnet", settings.subnet, "--bridge",
         settings.bridge], stdout=log, stderr=log)
    try:
        _wait_node(cluster, name, proc)
        yield settings
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        asyncio.run(teardown(settings, grace_seconds=1))


def _wait_node(cluster: Cluster, name: str, proc: subprocess.Popen[bytes]) -> None:
    import json

    deadline = time.monotonic() + 30
    req = urllib.request.Request(f"{cluster.url}/api/v1/nodes/{name}",
                                 headers={"Authorization": f"Bearer {cluster.token}"})
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the agent exited during start-up")
        with contextlib.suppress(urllib.error.URLError, OSError, ValueError, KeyError), \
                urllib.request.urlopen(req, timeout=1) as resp:
            if json.loads(resp.read())["status"]["ready"]:
                return
        time.sleep(0.1)
    raise RuntimeError("the node did not register within 30 s")
