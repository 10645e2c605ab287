"""Keeps each app's Networks and Service objects equal to its spec, and its status summary
current."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from controller.reconcilers.app_networks import desired_networks, plan_networks
from controller.reconcilers.app_plan import plan_app
from controller.reconcilers.informer import EventType, Informer
from controller.reconcilers.runner import Reconciler
from controller.reconcilers.status import app_status
from controller.store.errors import NotFound
from controller.store.objects import ObjectStore
from skiff.models.kinds import NETWORK, SERVICE
from skiff.models.objects import App, Network, Service, Task


class AppReconciler(Reconciler):
    name = "apps"

    def __init__(self, store: ObjectStore, apps: Informer, services: Informer,
                 networks: Informer, tasks: Informer) -> None:
        super().__init__()
        self.store = store
        self.apps = apps
        self.services = services
        self.networks = networks
        self.tasks = tasks
        services.add_index("app", lambda s: s.metadata.app)
        networks.add_index("app", lambda n: n.metadata.app)
        apps.add_handler(lambda _t, app: self.enqueue(app.metadata.name))
        services.add_handler(lambda _t, svc: self.enqueue_soon(svc.metadata.app))
        networks.add_handler(self._network_event)
        tasks.add_handler(self._task_event)

    def _network_event(self, _event: EventType, net: Network) -> None:
        if net.metadata.app:
            self.enqueue_soon(net.metadata.app)

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

    async def reconcile(self, key: Any) -> None:
        app: App | None = self.apps.get(key)
        services: list[Service] = self.services.by_index("app", key)
        networks = plan_networks(key, app, self._app_networks(key, app), self._in_use())
        plan = plan_app(app, services)
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
        if app is None or not plan.empty or not networks.empty:
            return  # the writes above come back as events and finish the job
        status = app_status(app.metadata.generation, services)
        if status != app.status:
            await self.store.update(dataclasses.replace(app, status=status))
