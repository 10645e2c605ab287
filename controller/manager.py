"""Wires informers to reconcilers and runs them all while this controller leads."""

from __future__ import annotations

import asyncio

from controller.events import EventRecorder
from controller.reconcilers.apps import AppReconciler
from controller.reconcilers.endpoints import EndpointsReconciler
from controller.reconcilers.informer import Informer
from controller.reconcilers.networks import NetworkReconciler
from controller.reconcilers.node_plan import DEFAULT_GRACE_SECONDS
from controller.reconcilers.nodes import NodeLifecycle
from controller.reconcilers.services import ServiceReconciler
from controller.scheduler.loop import BinderLoop
from controller.store.objects import ObjectStore
from skiff.models.kinds import APP, ENDPOINTS, NETWORK, NODE, SERVICE, TASK, VOLUME


async def run_reconcilers(store: ObjectStore, node_grace: float = DEFAULT_GRACE_SECONDS,
                          scheduler: str = "default") -> None:
    apps, services = Informer(store, APP), Informer(store, SERVICE)
    tasks, nodes = Informer(store, TASK), Informer(store, NODE)
    networks, endpoints = Informer(store, NETWORK), Informer(store, ENDPOINTS)
    volumes = Informer(store, VOLUME)
    events = EventRecorder(store)
    informers = (apps, services, tasks, nodes, networks, endpoints, volumes)
    loops = (
        AppReconciler(store, apps, services, networks, tasks, volumes),
        ServiceReconciler(store, services, tasks, nodes, events=events),
        BinderLoop(store, tasks, nodes, strategy=scheduler, volumes=volumes, events=events),
        NodeLifecycle(store, nodes, tasks, grace=node_grace, events=events),
        NetworkReconciler(store, networks, nodes),
        EndpointsReconciler(store, services, tasks, nodes, endpoints),
    )
    async with asyncio.TaskGroup() as group:
        for informer in informers:
            group.create_task(informer.run())
        # Reconcile only from a full picture, or a half-filled cache reads as "missing".
        await asyncio.gather(*(i.synced.wait() for i in informers))
        for loop in loops:
            group.create_task(loop.run())
        group.create_task(events.run())
