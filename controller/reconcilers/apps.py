"""Keeps each app's Networks and Service objects equal to its spec, makes its Volumes, and
keeps its status summary current."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from controller.reconcilers.app_networks import desired_networks, plan_networks
from controller.reconcilers.app_plan import plan_app
from controller.reconcilers.app_volumes import VolumePlan, desired_volumes, plan_volumes
from controller.reconcilers.informer import EventType, Informer
from controller.reconcilers.runner import Reconciler
from controller.reconcilers.status import app_status
from controller.store.errors import AlreadyExists, Conflict, NotFound
from controller.store.objects import ObjectStore
from skiff.models.kinds import NETWORK, SERVICE
from skiff.models.objects import App, Network, Service, Task, Volume


class AppReconciler(Reconciler):
    name = "apps"

    def __init__(self, store: ObjectStore, apps: Informer, services: Informer,
                 networks: Informer, tasks: Informer, volumes: Informer | None = None
                 ) -> None:
        super().__init__()
        self.store = store
        self.apps = apps
        self.services = services
        self.networks = networks
        self.tasks = tasks
        self.volumes = volumes
        if volumes is not None:
            volumes.add_handler(self._volume_event)
        services.add_index("app", lambda s: s.metadata.app)
        networks.add_index("app", lambda n: n.metadata.app)
        apps.add_handler(lambda _t, app: self.enqueue(app.metadata.name))
        services.add_handler(lambda _t, svc: self.enqueue_soon(svc.metadata.app))
        networks.add_handler(self._network_event)
        tasks.add_handler(self._task_event)

    def _network_event(self, _event: EventType, net: Network) -> None:
        if net.metadata.app:
            self.enqueue_soon(net.metadata.app)

    def _volume_event(self, event: EventType, vol: Volume) -> None:
        # An app's volume removed (`skiff volume rm`) is made again, empty, while the app
        # still wants it.
        if event == "DELETED" and vol.metadata.app:
            self.enqueue_soon(vol.metadata.app)

    def _task_event(self, event: EventType, task: Task) -> None:
        # A network its app no longer wants waits for the last task on it to go.
        if event != "DELETED":
            return
        for name in task.spec.container.networks:
            net: Network | None = self.networks.get(name)
            if net is not None and net.metadata.app and not self._wanted(net):
                self.enqueue_soon(net.metadata.app)

    def _wanted(self, net: Network) -> bool:
        app: App | None = self.apps.get(net.metadata.app or "")
        return app is not None and net.metadata.name in desired_networks(app)

    def all_keys(self) -> Iterable[Hashable]:
        names = {a.metadata.name for a in self.apps.items()}
        names |= {s.metadata.app for s in self.services.items()}
        names |= {n.metadata.app for n in self.networks.items() if n.metadata.app}
        return sorted(names)

    def _in_use(self) -> Callable[[str], bool]:
        """Whether any service or task refers to a network (another app's may name it as
        external); the scan is done once, and only if a network is about to go."""
        used: set[str] | None = None

        def in_use(name: str) -> bool:
            nonlocal used
            if used is None:
                used = {n for t in self.tasks.items() for n in t.spec.container.networks}
                used |= {n for s in self.services.items() for n in s.spec.networks}
            return name in used

        return in_use

    def _app_networks(self, key: str, app: App | None) -> dict[str, Network]:
        have = {n.metadata.name: n for n in self.networks.by_index("app", key)}
        for name in desired_networks(app) if app is not None else ():
            net = self.networks.get(name)
            if net is not None:
                have[name] = net
        return have

    def _app_volumes(self, app: App | None) -> dict[str, Volume]:
        assert self.volumes is not None
        out = {}
        for name in desired_volumes(app) if app is not None else ():
            vol = self.volumes.get(name)
            if vol is not None:
                out[name] = vol
        return out

    async def reconcile(self, key: Any) -> None:
        app: App | None = self.apps.get(key)
        services: list[Service] = self.services.by_index("app", key)
        networks = plan_networks(key, app, self._app_networks(key, app), self._in_use())
        plan = plan_app(app, services)
        volumes = plan_volumes(key, app, self._app_volumes(app)) \
            if self.volumes is not None else VolumePlan()
        for vol in volumes.create:
            with contextlib.suppress(AlreadyExists):  # made meanwhile: used as it is
                await self.store.create(vol)
        for vol in volumes.update:
            with contextlib.suppress(Conflict, NotFound):  # changed meanwhile: next round
                await self.store.update(vol)
        # Networks first: a service's tasks should find the networks they join.
        for net in networks.create:
            await self.store.create(net)
        for net in networks.update:
            await self.store.update(net)
        for svc in plan.create:
            await self.store.create(svc)
        for svc in plan.update:
            await self.store.update(svc)
        for svc in plan.delete:
            with contextlib.suppress(NotFound):
                await self.store.delete(SERVICE, svc.metadata.name, svc.metadata.app,
                                        resource_version=svc.metadata.resource_version)
        for net in networks.delete:
            with contextlib.suppress(NotFound):
                await self.store.delete(NETWORK, net.metadata.name,
                                        resource_version=net.metadata.resource_version)
        if app is None or not plan.empty or not networks.empty or not volumes.empty:
            return  # the writes above come back as events and finish the job
        status = app_status(app.metadata.generation, services)
        if status != app.status:
            await self.store.update(dataclasses.replace(app, status=status))
