"""Entry points for `skiff image import` and `skiff images` (the argparse glue lives in
skiff/cli). Synchronous: each call runs its own event loop, as the CLI has none."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from agent.images.importer import import_image
from agent.images.store import ImageStore


def cli_import(store_root: Path, path: Path, ref: str) -> str:
    """Import FILE|DIR as `ref`; returns `name:tag@sha256:<manifest digest>`. Raises
    agent.images.errors.ImageError (or OSError) with a message fit to print."""
    async def run() -> str:
        image = await import_image(ImageStore(store_root), Path(path), ref)
        return f"{image.ref}@{image.digest}"

    return asyncio.run(run())


def cli_list(store_root: Path) -> list[dict[str, Any]]:
    """One dict per tag, sorted by reference: ref, repository, tag, digest, id (config
    digest), size (bytes of stored blobs), created (RFC 3339 or None)."""
    if not (Path(store_root) / "index.json").exists():
        return []  # no store yet: nothing to list, and nothing to create for a reader

    async def run() -> list[dict[str, Any]]:
        return [{"ref": s.ref, "repository": s.ref.rpartition(":")[0],
                 "tag": s.ref.rpartition(":")[2], "digest": s.digest, "id": s.id,
                 "size": s.size, "created": s.created}
                for s in await ImageStore(store_root).list()]

    return asyncio.run(run())
