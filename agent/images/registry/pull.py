"""Pull: manifest (by tag or digest; an index resolved to this host's platform), config
and layers, each verified against its digest as it streams, then handed to the store's
add_image, which checks everything again (sizes, diff_ids) before tagging.

Nothing half-written lands in the store: layers stream into files under the store's
tmp/ (which add_image moves in, or deletes on failure; a crash leaves them for the next
open to clean), and the index names the image only once every blob is in blobs/.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from agent.images import ingest
from agent.images.fsutil import CHUNK
from agent.images.models import Descriptor, Image
from agent.images.oci import (
    MAX_BLOB_BYTES,
    MAX_CONFIG_BYTES,
    MAX_MANIFEST_BYTES,
    host_platform,
    parse_manifest,
    sha256_digest,
)
from agent.images.refs import is_digest
from agent.images.registry.client import RegistryClient, transport_errors
from agent.images.registry.digests import DigestVerifier, verify_bytes
from agent.images.registry.endpoint import RemoteRef, parse_remote, scope_for
from agent.images.registry.errors import DigestMismatch, RegistryError, RegistryUnreachable
from agent.images.registry.manifests import ACCEPT, choose_platform, is_index, media_type_of
from agent.images.registry.options import RegistryOptions
from agent.images.registry.progress import BlobEvent, Progress, ignore
from agent.images.store import ImageStore

# Layers downloaded at once: enough to fill a link, few enough not to swamp a registry.
PARALLEL_LAYERS = 3


@dataclass(frozen=True)
class PullResult:
    image: Image
    remote: RemoteRef
    digest: str        # what the reference resolved to (an index's digest for a multi-
    size: int          # platform image; else the image manifest's); size of that document


async def read_limited(resp_content: asyncio.StreamReader, limit: int, what: str) -> bytes:
    data = bytearray()
    async for chunk in resp_content.iter_chunked(CHUNK):
        data += chunk
        if len(data) > limit:
            raise RegistryError(f"{what} is over the {limit} byte limit")
    return bytes(data)


async def fetch_manifest(client: RegistryClient, repo: str, reference: str,
                         scope: str) -> tuple[bytes, str, str]:
    """(document, media type, digest) for a tag or digest, verified: a digest reference
    must hash to itself, and a tag's Docker-Content-Digest header, if sent, must match."""
    what = f"manifest {repo}:{reference}" if not is_digest(reference) else \
        f"manifest {repo}@{reference}"
    async with client.request("GET", f"/v2/{repo}/manifests/{reference}", scope=scope,
                              headers={"Accept": ACCEPT}, what=what) as resp:
        data = await read_limited(resp.content, MAX_MANIFEST_BYTES, what)
        header = resp.headers.get("Docker-Content-Digest")
        content_type = resp.headers.get("Content-Type")
    digest = sha256_digest(data)
    if is_digest(reference) and digest != reference:
        raise DigestMismatch(f"digest mismatch: registry {client.registry} served "
                             f"{what} hashing to {digest}")
    if header and header.startswith("sha256:") and header != digest:
        raise DigestMismatch(f"digest mismatch: registry {client.registry} says {what} is "
                             f"{header}, its content hashes to {digest}")
    return data, media_type_of(data, content_type), digest


async def fetch_blob_bytes(client: RegistryClient, repo: str, desc: Descriptor,
                           scope: str, limit: int, what: str) -> bytes:
    if desc.size > limit:
        raise RegistryError(f"{what} is {desc.size} bytes, over the {limit} byte limit")
    async with client.request("GET", f"/v2/{repo}/blobs/{desc.digest}", scope=scope,
                              what=what) as resp:
        data = await read_limited(resp.content, desc.size, what) if desc.size else b""
    verify_bytes(data, desc.digest, desc.size, f"{what} from registry {client.registry}")
    return data


async def fetch_blob_file(client: RegistryClient, repo: str, desc: Descriptor,
                          scope: str, dest: Path, what: str) -> None:
    """Stream a blob into `dest` (created here), verifying it; `dest` is removed on any
    failure, so a mismatch leaves nothing behind."""
    if desc.size > MAX_BLOB_BYTES:
        raise RegistryError(f"{what} is {desc.size} bytes, over the {MAX_BLOB_BYTES} limit")
    # A connection lost mid-body is retried from the start (client.request retries only
    # until the answer's headers), within the same bounded policy.
    delays = iter(client.retry.delays())
    attempt = 0
    while True:
        attempt += 1
        try:
            await _stream_to(client, repo, desc, scope, dest, what)
            return
        except (TimeoutError, aiohttp.ClientError) as exc:
            await asyncio.to_thread(dest.unlink, missing_ok=True)
            delay = next(delays, None)
            if delay is None:
                raise RegistryUnreachable(
                    f"registry {client.registry} unreachable after {attempt} attempts: "
                    f"{what}: {exc or type(exc).__name__}") from None
            await asyncio.sleep(delay)
        except BaseException:
            await asyncio.to_thread(dest.unlink, missing_ok=True)
            raise


async def _stream_to(client: RegistryClient, repo: str, desc: Descriptor, scope: str,
                     dest: Path, what: str) -> None:
    verifier = DigestVerifier(desc.digest, desc.size, f"{what} from registry "
                                                      f"{client.registry}")
    async with client.request("GET", f"/v2/{repo}/blobs/{desc.digest}", scope=scope,
                              what=what) as resp:
        with await asyncio.to_thread(open, dest, "xb") as out:
            async for chunk in resp.content.iter_chunked(CHUNK):
                verifier.update(chunk)
                await asyncio.to_thread(out.write, chunk)
            verifier.finish()
            await asyncio.to_thread(out.flush)


async def pull(store: ImageStore, ref: str, options: RegistryOptions | None = None,
               progress: Progress = ignore,
               platform: tuple[str, str] | None = None) -> PullResult:
    """Pull `ref` (`registry/repo[:tag][@digest]`) into `store`, tagged as written (see
    RemoteRef.local). Raises RegistryError subclasses (DigestMismatch, RemoteNotFound,
    RegistryUnreachable, RegistryAuthError) or the store's ImageError."""
    options = options or RegistryOptions()
    remote = parse_remote(ref)
    await store.open()
    with transport_errors(remote.registry):
        manifest, config, sources, top, top_digest = await _fetch(store, remote, options,
                                                                 progress, platform)
    local = remote.local
    if remote.digest is not None and remote.digest != sha256_digest(manifest):
        # A digest naming an index: keep the tag (if any) and drop the digest, which
        # names the index, not the stored manifest.
        local = f"{remote.name}@{sha256_digest(manifest)}" if remote.tag is None else \
            f"{remote.name}:{remote.tag}"
    image = await store.add_image(manifest, config, sources, ref=local)
    return PullResult(image, remote, top_digest, len(top))


async def _fetch(store: ImageStore, remote: RemoteRef, options: RegistryOptions,
                 progress: Progress, platform: tuple[str, str] | None,
                 ) -> tuple[bytes, bytes, list[Path | None], bytes, str]:
    """(manifest, config, layer sources, top document, its digest), all verified."""
    repo, scope = remote.repository, scope_for(remote.repository, "pull")
    async with options.client(remote.registry) as client:
        top, top_type, top_digest = await fetch_manifest(client, repo, remote.reference,
                                                         scope)
        manifest, mt = top, top_type
        if is_index(top_type):
            chosen = choose_platform(top, platform or host_platform(),
                                     f"{remote.registry}/{repo}:{remote.reference}")
            manifest, mt, _ = await fetch_manifest(client, repo, chosen.digest, scope)
        m = parse_manifest(manifest, mt)
        blobs_total = len(m.layers) + 1
        config = await fetch_blob_bytes(client, repo, m.config, scope, MAX_CONFIG_BYTES,
                                        f"config {m.config.digest}")
        progress(BlobEvent("config", m.config.digest, m.config.size, "pulled",
                           blobs_total, blobs_total))
        sources = await _fetch_layers(client, store, repo, scope, m.layers, progress)
    return manifest, config, sources, top, top_digest


async def _fetch_layers(client: RegistryClient, store: ImageStore, repo: str, scope: str,
                        layers: tuple[Descriptor, ...],
                        progress: Progress) -> list[Path | None]:
    """One source per layer for add_image: None where the store has the blob, else a
    verified file in the store's tmp/. On failure every file fetched so far is removed."""
    total = len(layers) + 1
    sources: list[Path | None] = [None] * len(layers)
    fetching: dict[str, Path] = {}
    gate = asyncio.Semaphore(PARALLEL_LAYERS)

    async def one(i: int, desc: Descriptor, dest: Path) -> None:
        async with gate:
            progress(BlobEvent("layer", desc.digest, desc.size, "pulling", i + 1, total))
            await fetch_blob_file(client, repo, desc, scope, dest, f"layer {desc.digest}")
            progress(BlobEvent("layer", desc.digest, desc.size, "pulled", i + 1, total))

    jobs = []
    for i, desc in enumerate(layers):
        if store.blob_path(desc.digest).exists():
            progress(BlobEvent("layer", desc.digest, desc.size, "exists", i + 1, total))
            continue
        if desc.digest not in fetching:  # one blob listed twice is fetched once
            fetching[desc.digest] = store.temp_path("pull")
            jobs.append(one(i, desc, fetching[desc.digest]))
        sources[i] = fetching[desc.digest]
    try:
        async with asyncio.TaskGroup() as group:
            for job in jobs:
                group.create_task(job)
    except BaseExceptionGroup as eg:
        await asyncio.to_thread(ingest.discard, list(fetching.values()))
        # The first cause, as is: callers match on DigestMismatch, RegistryUnreachable...
        first = eg.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    except BaseException:
        await asyncio.to_thread(ingest.discard, list(fetching.values()))
        raise
    return sources
