"""The controller process: API server for everyone, reconcilers while leader."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from controller.api.server import build_app
from controller.auth.bootstrap import ensure_admin_token, ensure_join_token
from controller.auth.tokens import TokenStore
from controller.leader import LeaderElector
from controller.manager import run_reconcilers
from controller.store.etcd import EtcdKV
from controller.store.objects import ObjectStore
from skiff.client.config import ClientConfig, write_config

log = logging.getLogger("skiff.controller")


@dataclass(frozen=True)
class ControllerSettings:
    etcd_host: str = "127.0.0.1"
    etcd_port: int = 2379
    etcd_endpoints: tuple[tuple[str, int], ...] = ()  # several members: HA
    listen_host: str = "127.0.0.1"
    listen_port: int = 7480
    state_dir: Path = Path("/var/lib/skiff/controller")
    client_config: Path | None = None  # where to write the CLI config on first start
    leader_ttl: int = 10
    node_grace: float = 10.0  # seconds without a heartbeat before a node is Down
    scheduler: str = "default"  # or "round-robin", the benchmark's baseline
    # Host folders bind mounts may come from; empty: any (sensitive ones draw a warning).
    allowed_bind_prefixes: tuple[str, ...] = ()

    @property
    def token_file(self) -> Path:
        return self.state_dir / "admin.token"

    @property
    def join_token_file(self) -> Path:
        return self.state_dir / "join.token"

    @property
    def url(self) -> str:
        return f"http://{self.listen_host}:{self.listen_port}"


async def serve(settings: ControllerSettings, stop: asyncio.Event) -> None:
    kv = EtcdKV(settings.etcd_host, settings.etcd_port, endpoints=settings.etcd_endpoints)
    store = ObjectStore(kv)
    tokens = TokenStore(kv)
    token, created = await ensure_admin_token(tokens, settings.token_file)
    await ensure_join_token(tokens, settings.join_token_file)
    if created and settings.client_config is not None:
        path = write_config(ClientConfig(server=settings.url, token=token),
                            settings.client_config)
        log.info("wrote CLI config to %s", path)

    runner = web.AppRunner(build_app(store, tokens, settings.allowed_bind_prefixes),
                           access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.listen_host, settings.listen_port, reuse_address=True)
    await site.start()
    log.info("API listening on %s", settings.url)

    identity = f"{socket.gethostname()}:{settings.listen_port}"
    elector = LeaderElector(kv, identity, ttl=settings.leader_ttl)
    leading = asyncio.create_task(elector.run(lambda: run_reconcilers(
        store, settings.node_grace, settings.scheduler)))
    try:
        await stop.wait()
    finally:
        leading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await leading
        await runner.cleanup()
        await kv.close()


def run(settings: ControllerSettings) -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    asyncio.run(main())
