"""Push to and pull from a real docker-registry, through the library and the CLI."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from agent.images.models import Image
from agent.images.registry import (
    BlobEvent,
    DigestMismatch,
    ImagePuller,
    RegistryOptions,
    RegistryUnreachable,
    RemoteNotFound,
    RetryPolicy,
    pull,
    push,
)
from agent.images.store import ImageStore
from tests.integration.cli import skiff
from tests.integration.registry.conftest import Registry, needs_registry

pytestmark = [pytest.mark.integration, needs_registry]


def _entries(store: ImageStore) -> list[dict[str, object]]:
    return json.loads((store.root / "index.json").read_text())["manifests"]


async def test_push_then_pull_into_another_store(registry: Registry, options: RegistryOptions,
                                                 src_store: ImageStore, dst_store: ImageStore,
                                                 busybox: Image) -> None:
    ref = f"{registry.addr}/tools/busybox:1"
    await src_store.tag("busybox:latest", ref)
    events: list[BlobEvent] = []
    pushed = await push(src_store, ref, options, events.append)
    assert pushed.digest == busybox.digest
    assert [(e.kind, e.action) for e in events if e.action != "pushing"] == [
        ("layer", "pushed"), ("config", "pushed")]

    got: list[BlobEvent] = []
    pulled = await pull(dst_store, ref, options, got.append)
    image = pulled.image
    assert pulled.digest == image.digest == busybox.digest   # manifest digest
    assert image.id == busybox.id                            # config digest
    assert image.ref == ref and image.diff_ids == busybox.diff_ids
    for layer in image.layers:
        assert dst_store.blob_path(layer.digest).is_file()
    assert ("layer", "pulled") in [(e.kind, e.action) for e in got]
    assert (await dst_store.resolve(ref)) is not None
    assert list(dst_store.tmp.iterdir()) == []

    # Pushing again uploads nothing: every blob is there.
    again: list[BlobEvent] = []
    await push(src_store, ref, options, again.append)
    assert {e.action for e in again} == {"exists"}

    # Pulling again fetches no layer: the store has them.
    again_pull: list[BlobEvent] = []
    await pull(dst_store, ref, options, again_pull.append)
    assert [e.action for e in again_pull if e.kind == "layer"] == ["exists"]


async def test_pull_by_digest(registry: Registry, options: RegistryOptions,
                              src_store: ImageStore, dst_store: ImageStore,
                              busybox: Image) -> None:
    ref = f"{registry.addr}/busybox:latest"
    await src_store.tag("busybox:latest", ref)
    await push(src_store, ref, options)
    by_digest = f"{registry.addr}/busybox@{busybox.digest}"
    result = await pull(dst_store, by_digest, options)
    assert result.image.digest == busybox.digest
    assert result.image.ref == by_digest
    assert (await dst_store.resolve(by_digest)) is not None
    assert await dst_store.list() == []  # kept untagged, as docker shows <none>
    missing = f"{registry.addr}/busybox@sha256:{'1' * 64}"
    with pytest.raises(RemoteNotFound, match=r"MANIFEST_UNKNOWN|not found|unknown"):
        await pull(dst_store, missing, options)


async def test_a_tampered_blob_is_refused_and_nothing_lands(
        registry: Registry, options: RegistryOptions, src_store: ImageStore,
        dst_store: ImageStore, busybox: Image) -> None:
    ref = f"{registry.addr}/busybox:latest"
    await src_store.tag("busybox:latest", ref)
    await push(src_store, ref, options)
    data = registry.blob_data(busybox.layers[0].digest)
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size, different bytes
    data.write_bytes(bytes(raw))

    with pytest.raises(DigestMismatch, match="digest mismatch"):
        await pull(dst_store, ref, options)
    assert _entries(dst_store) == []
    assert list(dst_store.tmp.iterdir()) == []
    assert not dst_store.blob_path(busybox.layers[0].digest).exists()
    assert list(dst_store.layers.iterdir()) == []


async def test_an_unreachable_registry_fails_after_bounded_retries(
        dst_store: ImageStore) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    opts = RegistryOptions(retry=RetryPolicy(attempts=3, backoff=0.05, max_backoff=0.1))
    started = time.monotonic()
    with pytest.raises(RegistryUnreachable,
                       match=rf"registry 127.0.0.1:{port} unreachable after 3 attempts"):
        await pull(dst_store, f"127.0.0.1:{port}/busybox:latest", opts)
    assert time.monotonic() - started < 10


async def test_puller_pulls_once_for_many_waiters(registry: Registry, options: RegistryOptions,
                                                  src_store: ImageStore,
                                                  dst_store: ImageStore,
                                                  busybox: Image) -> None:
    import asyncio

    ref = f"{registry.addr}/busybox:latest"
    await src_store.tag("busybox:latest", ref)
    await push(src_store, ref, options)
    puller = ImagePuller(dst_store, options)
    seen: list[list[BlobEvent]] = [[], [], []]
    images = await asyncio.gather(*(puller.ensure(ref, s.append) for s in seen))
    assert {i.digest for i in images} == {busybox.digest}
    pulled = [e for s in seen for e in s if e.action == "pulled" and e.kind == "layer"]
    assert len(pulled) == 3  # one download, told to each of the three waiters
    assert (await puller.ensure(ref)).digest == busybox.digest  # from the store now


async def test_cli_push_and_pull(registry: Registry, workdir: Path, src_store: ImageStore,
                                 busybox: Image) -> None:
    ref = f"{registry.addr}/busybox:v1"
    await src_store.tag("busybox:latest", ref)
    env = {"SKIFF_CONFIG": str(workdir / "cfg" / "config")}
    first = await skiff("push", ref, "--store", str(src_store.root), env=env)
    assert first.code == 0, first.err
    lines = first.out.splitlines()
    assert lines[0] == f"The push refers to repository [{registry.addr}/busybox]"
    assert lines[1].startswith(busybox.layers[0].hex[:12] + ": Pushed ")
    assert lines[-1] == f"v1: digest: {busybox.digest} size: " \
                        f"{src_store.blob_path(busybox.digest).stat().st_size}"
    second = await skiff("push", ref, "--store", str(src_store.root), env=env)
    assert f"{busybox.layers[0].hex[:12]}: Layer already exists" in second.out

    dst = workdir / "cli-dst"
    pulled = await skiff("pull", ref, "--store", str(dst), env=env)
    assert pulled.code == 0, pulled.err
    assert f"Digest: {busybox.digest}" in pulled.out
    assert "Pull complete" in pulled.out
    listed = await skiff("images", "--store", str(dst))
    assert f"{registry.addr}/busybox" in listed.out

    bad = await skiff("pull", f"{registry.addr}/nothing:here", "--store", str(dst), env=env)
    assert bad.code == 1 and bad.err.startswith("error: registry ")


async def test_pull_through_an_image_index(registry: Registry, options: RegistryOptions,
                                           src_store: ImageStore, dst_store: ImageStore,
                                           busybox: Image) -> None:
    """A multi-platform tag: the index lists an arm64 image that does not exist and our
    busybox for this host; the pull picks ours and reports the index's digest."""
    from agent.images.oci import MT_OCI_INDEX, canonical_json, host_platform, sha256_digest
    from agent.images.registry.endpoint import scope_for

    ref = f"{registry.addr}/multi:single"
    await src_store.tag("busybox:latest", ref)
    await push(src_store, ref, options)
    os_name, arch = host_platform()
    size = src_store.blob_path(busybox.digest).stat().st_size
    index = canonical_json({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": [
        {"mediaType": busybox.manifest_media_type, "digest": busybox.digest, "size": size,
         "platform": {"os": os_name, "architecture": arch}},
    ]})
    async with options.client(registry.addr) as client, client.request(
            "PUT", "/v2/multi/manifests/both", body=index, ok=(201,),
            scope=scope_for("multi", "pull", "push"), headers={"Content-Type": MT_OCI_INDEX}):
        pass
    result = await pull(dst_store, f"{registry.addr}/multi:both", options)
    assert result.digest == sha256_digest(index)
    assert result.image.digest == busybox.digest
    assert result.image.ref == f"{registry.addr}/multi:both"


async def test_5xx_answers_are_retried_then_reported(dst_store: ImageStore) -> None:
    from aiohttp import web

    from controller.store.etcd_server import free_port

    hits: list[str] = []

    async def broken(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"errors": [{"code": "UNAVAILABLE",
                                              "message": "try later"}]}, status=503)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        opts = RegistryOptions(retry=RetryPolicy(attempts=3, backoff=0.01))
        with pytest.raises(RegistryUnreachable,
                           match=r"unreachable after 3 attempts: .*503 UNAVAILABLE"):
            await pull(dst_store, f"127.0.0.1:{port}/app:1", opts)
    finally:
        await runner.cleanup()
    assert hits == ["/v2/app/manifests/1"] * 3
    assert _entries(dst_store) == []
