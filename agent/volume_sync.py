"""The node's side of Volumes: make a volume's folder when a task first needs it (or when
`skiff volume create --node` put it here) and report it, which claims the volume for this
node; remove the folder when `skiff volume rm` marked it, then delete the object.

Data is removed only on that explicit mark, never because an object is missing: a lost or
restored etcd must not cost anyone their data.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from agent.mounts import MountSetupError, ensure_volume, remove_volume, volume_path
from skiff.client.api import ApiClient, ApiError
from skiff.models.codec import DecodeError, decode, encode
from skiff.models.kinds import VOLUME
from skiff.models.objects import Volume, VolumeStatus

log = logging.getLogger("skiff.agent.volumes")


class NodeVolumes:
    def __init__(self, api: Callable[[], ApiClient], node: str, volumes_dir: Path) -> None:
        self._api = api
        self.node = node
        self.volumes_dir = volumes_dir
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def claim(self, name: str) -> Path:
        """The volume's data folder, made if need be, and reported as living here.
        MountSetupError if the volume lives on another node."""
        async with self._lock(name):
            record = await asyncio.to_thread(ensure_volume, self.volumes_dir, name)
            data = volume_path(self.volumes_dir, name) / "_data"
            status = VolumeStatus(node=self.node, mountpoint=str(data),
                                  created_at=record.created_at, ready=True)
            try:
                await self._api().request("PUT", f"/api/v1/volumes/{name}/status",
                                          body=encode(status))
            except ApiError as exc:
                if exc.status == 409:
                    raise MountSetupError(exc.message) from None
                # No Volume object (yet): the folder is made all the same; the object's
                # status follows on the next sync.
                log.warning("cannot report volume %s: %s", name, exc.message)
            return data

    async def apply(self, vol: Volume) -> None:
        """Act on one Volume of this node."""
        name = vol.metadata.name
        if vol.spec.node != self.node:
            return
        if vol.spec.deleting:
            async with self._lock(name):
                await asyncio.to_thread(remove_volume, self.volumes_dir, name)
                try:
                    await self._api().request("DELETE", f"/api/v1/volumes/{name}")
                except ApiError as exc:
                    if exc.status != 404:
                        raise
            log.info("volume %s removed", name)
            return
        have = volume_path(self.volumes_dir, name) / "_data"
        if not vol.status.ready or vol.status.mountpoint != str(have) or not have.is_dir():
            await self.claim(name)

    async def run(self) -> None:
        while True:
            try:
                listed = await self._api().list(VOLUME)
                for item in listed["items"]:
                    await self._apply_raw(item)
                revision = int(listed["metadata"]["resourceVersion"])
                async for event in self._api().watch(VOLUME, resource_version=revision):
                    if event["type"] != "DELETED":
                        await self._apply_raw(event["object"])
            except (ApiError, OSError) as exc:
                log.warning("following volumes: %s; retrying", exc)
                await asyncio.sleep(1.0)

    async def _apply_raw(self, item: object) -> None:
        try:
            vol = decode(Volume, item)
        except DecodeError as exc:
            log.warning("ignoring an unreadable Volume: %s", exc)
            return
        try:
            await self.apply(vol)
        except (ApiError, MountSetupError, OSError) as exc:
            log.warning("volume %s: %s", vol.metadata.name, exc)
