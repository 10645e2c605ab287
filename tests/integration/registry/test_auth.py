"""Authentication against a real docker-registry: htpasswd (basic) and token (bearer,
with our token server), through the library and `skiff login|push|pull|logout`."""

from __future__ import annotations

import json
import os
import stat
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from agent.images.models import Image
from agent.images.registry import (
    AuthFile,
    Credentials,
    RegistryAuthError,
    RegistryClient,
    RegistryOptions,
    pull,
    push,
)
from agent.images.store import ImageStore
from controller.store.etcd_server import free_port
from tests.integration.cli import skiff
from tests.integration.registry.conftest import (
    FAST_RETRY,
    Registry,
    needs_registry,
    run_registry,
)
from tests.integration.registry.tokenserver import ISSUER, SERVICE, SigningKey, TokenServer

pytestmark = [pytest.mark.integration, needs_registry]

USER, PASSWORD = "alice", "s3cret pass"


def bcrypt_line(user: str, password: str) -> str:
    """An htpasswd line docker-registry accepts (bcrypt only). The stdlib crypt module
    (glibc's libxcrypt) does bcrypt: no htpasswd binary or bcrypt package needed. It is
    deprecated (gone in 3.13), hence the warning filter; skiff targets 3.11."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    return f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))}\n"


@pytest.fixture
def basic_registry(workdir: Path) -> Iterator[Registry]:
    base = workdir / "basic"
    base.mkdir()
    (base / "htpasswd").write_text(bcrypt_line(USER, PASSWORD))
    with run_registry(base, {"htpasswd": {"realm": "skiff-test",
                                          "path": str(base / "htpasswd")}}) as reg:
        yield reg


@pytest.fixture
async def token_server(workdir: Path) -> AsyncIterator[tuple[TokenServer, str]]:
    key = SigningKey.make(workdir)
    server = TokenServer(key, USER, PASSWORD)
    runner = web.AppRunner(server.app())
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield server, f"http://127.0.0.1:{port}/token"
    finally:
        await runner.cleanup()


@pytest.fixture
def bearer_registry(workdir: Path, token_server: tuple[TokenServer, str]) -> Iterator[Registry]:
    server, realm = token_server
    base = workdir / "bearer"
    base.mkdir()
    auth = {"token": {"realm": realm, "service": SERVICE, "issuer": ISSUER,
                      "rootcertbundle": str(server.key.cert)}}
    with run_registry(base, auth) as reg:
        yield reg


def _opts(creds: Credentials | None) -> RegistryOptions:
    return RegistryOptions(credentials=lambda _r: creds, retry=FAST_RETRY)


async def test_basic_auth(basic_registry: Registry, src_store: ImageStore,
                          dst_store: ImageStore, busybox: Image) -> None:
    ref = f"{basic_registry.addr}/busybox:latest"
    await src_store.tag("busybox:latest", ref)
    with pytest.raises(RegistryAuthError, match="skiff login"):
        await push(src_store, ref, _opts(None))
    with pytest.raises(RegistryAuthError, match="401"):
        await push(src_store, ref, _opts(Credentials(USER, "wrong")))
    good = _opts(Credentials(USER, PASSWORD))
    assert (await push(src_store, ref, good)).digest == busybox.digest
    assert (await pull(dst_store, ref, good)).image.digest == busybox.digest


async def test_bearer_token_auth(bearer_registry: Registry,
                                 token_server: tuple[TokenServer, str],
                                 src_store: ImageStore, dst_store: ImageStore,
                                 busybox: Image) -> None:
    server, _ = token_server
    ref = f"{bearer_registry.addr}/team/busybox:1"
    await src_store.tag("busybox:latest", ref)
    with pytest.raises(RegistryAuthError):
        await push(src_store, ref, _opts(None))  # anonymous tokens grant nothing
    with pytest.raises(RegistryAuthError, match="refused the credentials"):
        await push(src_store, ref, _opts(Credentials(USER, "wrong")))

    server.requests.clear()
    good = _opts(Credentials(USER, PASSWORD))
    assert (await push(src_store, ref, good)).digest == busybox.digest
    # One token for the push scope, reused for every HEAD, upload and the manifest.
    assert [r["scopes"] for r in server.requests] == [["repository:team/busybox:pull,push"]]

    server.requests.clear()
    assert (await pull(dst_store, ref, good)).image.digest == busybox.digest
    assert [r["scopes"] for r in server.requests] == [["repository:team/busybox:pull"]]

    async with RegistryClient(bearer_registry.addr, credentials=Credentials(USER, PASSWORD),
                              retry=FAST_RETRY) as client:
        await client.check()  # what `skiff login` does


async def test_cli_login_push_pull_logout(bearer_registry: Registry, workdir: Path,
                                          src_store: ImageStore, busybox: Image) -> None:
    cfg_dir = workdir / "cfg"
    env = {"SKIFF_CONFIG": str(cfg_dir / "config")}
    auth_json = cfg_dir / "auth.json"
    addr = bearer_registry.addr
    ref = f"{addr}/busybox:latest"
    await src_store.tag("busybox:latest", ref)

    denied = await skiff("push", ref, "--store", str(src_store.root), env=env)
    assert denied.code == 1 and "skiff login" in denied.err

    wrong = await skiff("login", addr, "-u", USER, "--password-stdin", stdin="nope\n",
                        env=env)
    assert wrong.code == 1 and "refused the credentials" in wrong.err
    assert not auth_json.exists()  # nothing stored for a failed login

    ok = await skiff("login", addr, "-u", USER, "--password-stdin", stdin=PASSWORD + "\n",
                     env=env)
    assert ok.code == 0, ok.err
    assert "Login Succeeded" in ok.out
    assert stat.S_IMODE(os.stat(auth_json).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cfg_dir).st_mode) == 0o700
    assert AuthFile(auth_json).get(addr) == Credentials(USER, PASSWORD)
    assert list(json.loads(auth_json.read_text())["auths"]) == [addr]

    pushed = await skiff("push", ref, "--store", str(src_store.root), env=env)
    assert pushed.code == 0, pushed.err
    assert pushed.out.splitlines()[-1].startswith(f"latest: digest: {busybox.digest}")
    pulled = await skiff("pull", ref, "--store", str(workdir / "other"), env=env)
    assert pulled.code == 0, pulled.err

    out = await skiff("logout", addr, env=env)
    assert out.code == 0 and "Removing login credentials" in out.out
    assert AuthFile(auth_json).get(addr) is None
    again = await skiff("pull", ref, "--store", str(workdir / "third"), env=env)
    assert again.code == 1
