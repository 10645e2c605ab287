"""Real etcd for integration tests: one per session, or one per test that restarts it."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controller.main import ControllerSettings, serve
from controller.store.etcd import EtcdKV
from controller.store.etcd_server import EtcdProcess, free_port, start_etcd
from controller.store.kv import Delete
from controller.store.objects import ObjectStore
from skiff.client.api import ApiClient, ApiError


class RestartableEtcd:
    """An etcd on its own data dir that a test may stop and start again (same port,
    same data), to see clients ride out an outage."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.proc = start_etcd(base / "data", log_path=base / "etcd.log")

    def stop(self) -> None:
        self.proc.stop()

    def start(self) -> None:
        self.proc = start_etcd(self.base / "data", self.proc.host, client_port=self.proc.port,
                               peer_port=self.proc.peer_port, log_path=self.base / "etcd.log")

    def restart(self) -> None:
        self.stop()
        self.start()


def _etcd_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="skiff-etcd-"))


@pytest.fixture(scope="session")
def etcd_server() -> Iterator[EtcdProcess]:
    base = _etcd_dir()
    try:
        proc = start_etcd(base / "data", log_path=base / "etcd.log")
        try:
            yield proc
        finally:
            proc.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def restartable_etcd() -> Iterator[RestartableEtcd]:
    base = _etcd_dir()
    try:
        etcd = RestartableEtcd(base)
        try:
            yield etcd
        finally:
            etcd.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


async def delete_everything(proc: EtcdProcess) -> None:
    """Leave the shared etcd empty for the next test (etcd allows 128 ops per txn).
    Through a client of its own: the test may have closed (or broken) its client."""
    kv = EtcdKV(proc.host, proc.port, timeout=5.0)
    try:
        while True:
            kvs, _rev = await kv.range("")
            if not kvs:
                return
            await kv.txn([], [Delete(x.key) for x in kvs[:100]])
    finally:
        await kv.close()


@pytest.fixture
async def etcd_kv(etcd_server: EtcdProcess) -> AsyncIterator[EtcdKV]:
    kv = EtcdKV(etcd_server.host, etcd_server.port, timeout=5.0)
    try:
        yield kv
    finally:
        await kv.close()
        await delete_everything(etcd_server)


@dataclass
class RunningController:
    """A controller serving the API and running reconcilers in this test's event loop."""

    url: str
    token: str
    store: ObjectStore
    state_dir: Path

    def client(self, token: str | None = None) -> ApiClient:
        return ApiClient(self.url, token if token is not None else self.token)


async def wait_for(predicate: Callable[[], Awaitable[Any]], what: str,
                   timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll until ``predicate()`` returns something truthy; fail naming ``what``."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last saw {last!r}")


@contextlib.asynccontextmanager
async def running_controller(etcd_server: EtcdProcess, tmp_path: Path,
                             **settings_overrides: Any) -> AsyncIterator[RunningController]:
    """A controller serving in this process on the shared etcd; everything it stored is
    deleted afterwards."""
    settings = ControllerSettings(
        etcd_host=etcd_server.host, etcd_port=etcd_server.port,
        listen_port=free_port("127.0.0.1"), state_dir=tmp_path / "controller", leader_ttl=5,
        **settings_overrides)
    stop = asyncio.Event()
    serving = asyncio.create_task(serve(settings, stop))
    kv = EtcdKV(etcd_server.host, etcd_server.port, timeout=5.0)
    try:
        async def ready() -> bool:
            if serving.done():
                serving.result()  # raises what went wrong
            if not settings.token_file.exists():
                return False
            token = settings.token_file.read_text().strip()
            async with ApiClient(settings.url, token) as api:
                try:
                    await api.version()
                except ApiError:
                    return False
            return True

        await wait_for(ready, "the controller to answer")
        yield RunningController(settings.url, settings.token_file.read_text().strip(),
                                ObjectStore(kv), settings.state_dir)
    finally:
        stop.set()
        await asyncio.wait_for(serving, 15)
        await kv.close()
        await delete_everything(etcd_server)


@pytest.fixture
async def controller(etcd_server: EtcdProcess, tmp_path: Path
                     ) -> AsyncIterator[RunningController]:
    async with running_controller(etcd_server, tmp_path) as running:
        yield running
