"""Recording Events: best effort, never in the way. A record is queued and written by one
worker; a full queue drops it (and counts it) rather than slow a reconciler down. Events
live under an etcd lease of EVENT_TTL, a new lease every LEASE_ROTATE, so each event
lasts between EVENT_TTL - LEASE_ROTATE and EVENT_TTL, and etcd removes them itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from datetime import UTC, datetime

from controller.store.objects import ObjectStore
from skiff.models.objects import (
    CLUSTER_EVENTS,
    Event,
    EventType,
    InvolvedObject,
    ObjectMeta,
)

log = logging.getLogger("skiff.controller.events")

EVENT_TTL = 3600  # seconds
LEASE_ROTATE = 600.0
QUEUE_SIZE = 2000
MAX_MESSAGE = 1000


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_of(involved: InvolvedObject, reason: str, message: str, type_: EventType,
             source: str, at: str | None = None) -> Event:
    """`at`: when it happened (default: now); recording may come later (a queue)."""
    app = involved.app or CLUSTER_EVENTS
    name = f"{involved.name}.{secrets.token_hex(5)}"
    return Event(metadata=ObjectMeta(name=name, app=app), involved=involved, reason=reason,
                 message=message[:MAX_MESSAGE], type=type_, source=source, at=at or now())


class EventRecorder:
    def __init__(self, store: ObjectStore, source: str = "controller") -> None:
        self.store = store
        self.source = source
        self.queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        self.dropped = 0
        self._lease = 0
        self._lease_at = 0.0

    def record(self, involved: InvolvedObject, reason: str, message: str = "",
               type_: EventType = "Normal", source: str | None = None) -> None:
        try:
            self.queue.put_nowait(event_of(involved, reason, message, type_,
                                           source or self.source))
        except asyncio.QueueFull:
            self.dropped += 1

    async def write(self, event: Event) -> Event:
        """Store one event now, under the current lease."""
        if not self._lease or time.monotonic() - self._lease_at > LEASE_ROTATE:
            self._lease = await self.store.kv.grant_lease(EVENT_TTL)
            self._lease_at = time.monotonic()
        return await self.store.create(event, lease=self._lease)

    async def run(self) -> None:
        while True:
            event = await self.queue.get()
            try:
                await self.write(event)
            except Exception as exc:  # events are best effort: log, never stop
                log.warning("cannot record event %s for %s/%s: %s", event.reason,
                            event.involved.kind, event.involved.name, exc)
                self._lease = 0
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(1.0)
