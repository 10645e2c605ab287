"""Pull on demand for the agent: an image is pulled at most once at a time per node,
however many tasks ask for it; everyone waiting gets the same result (or error)."""

from __future__ import annotations

import asyncio

from agent.images.models import Image
from agent.images.registry.endpoint import parse_remote
from agent.images.registry.options import RegistryOptions
from agent.images.registry.progress import BlobEvent, Progress
from agent.images.registry.pull import pull
from agent.images.store import ImageStore


class ImagePuller:
    """`await puller.ensure(ref, progress)`: the image from the store if there, else
    pulled (joined if a pull of the same reference is in flight)."""

    def __init__(self, store: ImageStore, options: RegistryOptions | None = None) -> None:
        self.store = store
        self.options = options or RegistryOptions()
        self._inflight: dict[str, asyncio.Task[Image]] = {}
        self._listeners: dict[str, list[Progress]] = {}

    async def ensure(self, ref: str, progress: Progress | None = None) -> Image:
        image = await self.store.resolve(ref)
        if image is not None:
            return image
        key = parse_remote(ref).local
        listeners = self._listeners.setdefault(key, [])
        if progress is not None:
            listeners.append(progress)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._pull(key), name=f"pull {key}")
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._forget(key))
        try:
            # shield: one waiter being cancelled (its task stopped) must not cancel the
            # pull the others wait for.
            return await asyncio.shield(task)
        finally:
            if progress is not None and progress in listeners:
                listeners.remove(progress)

    def _forget(self, key: str) -> None:
        self._inflight.pop(key, None)
        self._listeners.pop(key, None)

    async def _pull(self, key: str) -> Image:
        def fan_out(event: BlobEvent) -> None:
            for listener in list(self._listeners.get(key, ())):
                listener(event)

        return (await pull(self.store, key, self.options, fan_out)).image
