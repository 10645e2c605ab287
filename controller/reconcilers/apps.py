"""Keeps each app's Service objects equal to its spec, and its status summary current."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Hashable, Iterable
from typing import Any

from controller.reconcilers.app_plan import plan_app
from controller.reconcilers.informer import Informer
from controller.reconcilers.runner import Reconciler
from controller.reconcilers.status import app_status
from controller.store.errors import NotFound
from controller.store.objects import ObjectStore
from skiff.models.kinds import SERVICE
from skiff.models.objects import App, Service


class AppReconciler(Reconciler):
    name = "apps"

    def __init__(self, store: ObjectStore, apps: Informer, services: Informer) -> None:
        super().__init__()
        self.store = store
        self.apps = apps
        self.services = services
        services.add_index("app", lambda s: s.metadata.app)
        apps.add_handler(lambda _t, app: self.enqueue(app.metadata.name))
        services.add_handler(lambda _t, svc: self.enqueue_soon(svc.metadata.app))

    def all_keys(self) -> Iterable[Hashable]:
        names = {a.metadata.name for a in self.apps.items()}
        names |= {s.metadata.app for s in self.services.items()}
        return sorted(names)

    async def reconcile(self, key: Any) -> None:
        app: App | None = self.apps.get(key)
        services: list[Service] = self.services.by_index("app", key)
        plan = plan_app(app, services)
        for svc in plan.create:
            await self.store.create(svc)
        for svc in plan.update:
            await self.store.update(svc)
        for svc in plan.delete:
            with contextlib.suppress(NotFound):
                await self.store.delete(SERVICE, svc.metadata.name, svc.metadata.app,
                                        resource_version=svc.metadata.resource_version)
        if app is None or not plan.empty:
            return  # the writes above come back as events and finish the job
        status = app_status(app.metadata.generation, services)
        if status != app.status:
            await self.store.update(dataclasses.replace(app, status=status))
