"""Push: every blob the registry lacks (HEAD to check, then a monolithic upload: POST
for an upload URL, PUT with the digest), config last among blobs, then the manifest
by tag, exactly the bytes the store holds, so the registry's digest equals ours."""

from __future__ import annotations

from dataclasses import dataclass

from agent.images.errors import ImageNotFound
from agent.images.models import Descriptor, Image
from agent.images.oci import MAX_MANIFEST_BYTES
from agent.images.registry.client import RegistryClient, transport_errors
from agent.images.registry.endpoint import RemoteRef, parse_remote, scope_for
from agent.images.registry.errors import DigestMismatch, RegistryError
from agent.images.registry.options import RegistryOptions
from agent.images.registry.progress import BlobEvent, Progress, ignore
from agent.images.store import ImageStore


@dataclass(frozen=True)
class PushResult:
    remote: RemoteRef
    digest: str   # the manifest's, as the registry confirmed it
    size: int     # the manifest's length in bytes


async def blob_exists(client: RegistryClient, repo: str, desc: Descriptor,
                      scope: str) -> bool:
    async with client.request("HEAD", f"/v2/{repo}/blobs/{desc.digest}", scope=scope,
                              ok=(200, 404), what=f"blob {desc.digest}") as resp:
        return resp.status == 200


async def upload_blob(client: RegistryClient, repo: str, desc: Descriptor, store: ImageStore,
                      scope: str) -> None:
    what = f"upload of {desc.digest}"
    async with client.request("POST", f"/v2/{repo}/blobs/uploads/", scope=scope,
                              ok=(202,), what=what) as resp:
        location = resp.headers.get("Location")
    if not location:
        raise RegistryError(f"registry {client.registry}: {what}: no Location in the answer")
    # The upload URL may carry its own query (state tokens): add the digest to it.
    sep = "&" if "?" in location else "?"
    url = f"{location}{sep}digest={desc.digest}"
    async with client.request("PUT", url, scope=scope, body=store.blob_path(desc.digest),
                              headers={"Content-Type": "application/octet-stream"},
                              ok=(201,), what=what) as resp:
        got = resp.headers.get("Docker-Content-Digest")
    if got and got != desc.digest:
        raise DigestMismatch(f"digest mismatch: registry {client.registry} stored "
                             f"{desc.digest} as {got}")


async def push(store: ImageStore, ref: str, options: RegistryOptions | None = None,
               progress: Progress = ignore, source: str | None = None) -> PushResult:
    """Push the store's image `source` (default: `ref`) to `ref`'s registry as `ref`.
    Raises ImageNotFound if the store lacks it, RegistryError subclasses otherwise."""
    options = options or RegistryOptions()
    remote = parse_remote(ref)
    image = await store.resolve(source or ref)
    if image is None:
        raise ImageNotFound(f"no image {source or ref!r} in {store.root}")
    manifest = await store.read_blob(image.digest, MAX_MANIFEST_BYTES)
    with transport_errors(remote.registry):
        got = await _push_all(options, remote, store, image, manifest, progress)
    if got and got != image.digest:
        raise DigestMismatch(f"digest mismatch: registry {remote.registry} stored "
                             f"{remote.repository}:{remote.tag or image.digest} as {got}, "
                             f"ours is {image.digest}")
    return PushResult(remote, image.digest, len(manifest))


async def _push_all(options: RegistryOptions, remote: RemoteRef, store: ImageStore,
                    image: Image, manifest: bytes, progress: Progress) -> str | None:
    """Blobs, then the manifest; the digest the registry says it stored, if it says."""
    repo, scope = remote.repository, scope_for(remote.repository, "pull", "push")
    async with options.client(remote.registry) as client:
        await _push_blobs(client, store, image, repo, scope, progress)
        # By digest when the reference has no tag: content without a name.
        reference = remote.tag or image.digest
        what = f"manifest {repo}:{reference}"
        async with client.request(
                "PUT", f"/v2/{repo}/manifests/{reference}", scope=scope, body=manifest,
                headers={"Content-Type": image.manifest_media_type}, ok=(201,),
                what=what) as resp:
            return resp.headers.get("Docker-Content-Digest")


async def _push_blobs(client: RegistryClient, store: ImageStore, image: Image, repo: str,
                      scope: str, progress: Progress) -> None:
    assert image.config_descriptor is not None
    # Layers first, config last: a registry then never holds a config whose layers
    # are missing, and docker orders it the same way.
    blobs = [("layer", d) for d in image.layers] + [("config", image.config_descriptor)]
    done: set[str] = set()
    for i, (kind, desc) in enumerate(blobs, 1):
        if desc.digest in done:
            continue
        done.add(desc.digest)
        event = BlobEvent(kind, desc.digest, desc.size, "exists", i, len(blobs))  # type: ignore[arg-type]
        if await blob_exists(client, repo, desc, scope):
            progress(event)
            continue
        progress(BlobEvent(event.kind, desc.digest, desc.size, "pushing", i, len(blobs)))
        await upload_blob(client, repo, desc, store, scope)
        progress(BlobEvent(event.kind, desc.digest, desc.size, "pushed", i, len(blobs)))
