"""The node agent: registers its Node, heartbeats, follows the tasks bound to it through
the controller's API (never etcd), and keeps one runner per task.

Level-triggered: a watch wakes it, a periodic full relist repairs what a watch missed,
and every sync compares the tasks it should run with the runners and containers it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from agent import launch, rootfs
from agent.build.service import BuildService
from agent.context import NodeContext, node_network
from agent.credentials import JoinError, node_token
from agent.dns.server import DnsServer
from agent.dns.upstream import read_node_upstreams
from agent.http import build_app
from agent.images.gc import ImageGC
from agent.images.gc_plan import GcPolicy
from agent.images.node_images import NodeImages
from agent.images.registry.credentials import AuthFile
from agent.images.registry.options import RegistryOptions
from agent.images.registry.puller import ImagePuller
from agent.images.store import ImageStore
from agent.netsync import ClusterNetworks
from agent.network.mesh import RoutingMesh
from agent.runtime.container import Runtime
from agent.settings import AgentSettings
from agent.taskrunner import TaskRunner
from agent.volume_sync import NodeVolumes
from skiff.client.api import ApiClient, ApiError
from skiff.models.codec import decode, encode
from skiff.models.kinds import TASK
from skiff.models.objects import (
    TERMINAL_STATES,
    Node,
    NodeResources,
    NodeStatus,
    ObjectMeta,
    Task,
    TaskStatus,
)

log = logging.getLogger("skiff.agent")
EVENT_QUEUE = 1000
TaskKey = tuple[str, str]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _memory_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _key(task: Task) -> TaskKey:
    return (task.metadata.app or "", task.metadata.name)


class NodeAgent:
    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.api = ApiClient(settings.server, settings.token)
        state = settings.state_dir
        self.runtime = Runtime(state / "runc", state / "runtime", settings.oci_runtime)
        self.images = ImageStore(settings.images)
        self.network = node_network(settings)
        self.dns = DnsServer(port=settings.dns_port)
        self.mesh = RoutingMesh(settings.mesh_table)
        self.cluster = ClusterNetworks(lambda: self.api, settings.name, self.network, self.dns,
                                       self.mesh, resync_seconds=settings.resync_seconds)
        insecure = (settings.registry,) if settings.registry else ()
        puller = ImagePuller(self.images, RegistryOptions.from_auth_file(
            AuthFile(state / "registry-auth.json"), insecure=insecure))
        source = NodeImages(self.images, puller, settings.name, settings.registry)
        self.builds = BuildService(
            node=settings.name, store=self.images, images=source, registry=settings.registry,
            registry_options=puller.options, work_dir=state / "build",
            cgroup_parent=f"{settings.cgroup_parent}-build", runc_binary=settings.oci_runtime)
        self.volumes = NodeVolumes(lambda: self.api, settings.name, state / "volumes")
        self.image_gc = ImageGC(self.images, self._images_in_use,
                                GcPolicy(unused_for=settings.image_gc_unused_for),
                                interval=settings.image_gc_interval)
        self.ctx = NodeContext(settings.name, self.runtime, self.images, self.network,
                               state / "containers", state / "volumes",
                               settings.cgroup_parent, self._report, source, self.cluster,
                               settings.address, self.volumes, self._event)
        self.tasks: dict[TaskKey, Task] = {}
        self.runners: dict[TaskKey, TaskRunner] = {}
        self._runner_tasks: set[asyncio.Task[None]] = set()
        self._unreported: dict[TaskKey, tuple[Task, TaskStatus]] = {}
        self._wake = asyncio.Event()
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(EVENT_QUEUE)
        self._synced = False
        self._secret = ""

    def _images_in_use(self) -> set[str]:
        """What the image GC must keep: the images of every task bound here, and of
        every runner still here (a task being stopped)."""
        tasks = [*self.tasks.values(), *(r.task for r in self.runners.values())]
        return {t.spec.container.image for t in tasks}

    # -- talking to the controller -------------------------------------------------------

    def _node_status(self) -> NodeStatus:
        cpus = float(os.cpu_count() or 1)
        memory = _memory_bytes()
        return NodeStatus(address=self.settings.address, agent_port=self.settings.port,
                          ready=True, capacity=NodeResources(cpus, memory),
                          allocatable=NodeResources(cpus, memory),
                          last_heartbeat=_now(), message="")

    async def register(self) -> None:
        node = Node(metadata=ObjectMeta(name=self.settings.name, labels=self.settings.labels),
                    status=self._node_status())
        await self.api.register_node(encode(node))
        self._secret = await self.api.new_agent_secret(self.settings.name)

    async def _report(self, task: Task, status: TaskStatus) -> None:
        key = _key(task)
        try:
            await self.api.put_task_status(key[0], key[1], encode(status))
            self._unreported.pop(key, None)
        except ApiError as exc:
            if exc.code == "NotFound":
                self._unreported.pop(key, None)
                return
            log.warning("task %s: status not reported yet: %s", key[1], exc.message)
            self._unreported[key] = (task, status)

    def _event(self, task: Task, reason: str, message: str, type_: str) -> None:
        """Queue an Event about one of this node's tasks; dropped if the queue is full
        (events are for people, never worth slowing a task down)."""
        with contextlib.suppress(asyncio.QueueFull):
            self._events.put_nowait({
                "involved": {"kind": "Task", "name": task.metadata.name,
                             "app": task.metadata.app},
                "reason": reason, "message": message[:1000], "type": type_,
                "at": datetime.now(UTC).isoformat(timespec="milliseconds")
                .replace("+00:00", "Z")})

    async def _post_events(self) -> None:
        while True:
            body = await self._events.get()
            try:
                await self.api.request("POST", "/api/v1/events", body=body)
            except ApiError as exc:
                if exc.code not in ("NotFound", "Forbidden"):
                    log.debug("event %s not recorded: %s", body["reason"], exc.message)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            try:
                await self.api.put_node_status(self.settings.name, encode(self._node_status()))
            except ApiError as exc:
                log.warning("heartbeat failed: %s", exc.message)

    # -- which tasks are ours ------------------------------------------------------------

    async def _relist(self) -> int:
        listed = await self.api.list(TASK, node=self.settings.name)
        self.tasks = {_key(t): t for t in (decode(Task, i) for i in listed["items"])}
        self._synced = True
        self._wake.set()
        return int(listed["metadata"]["resourceVersion"])

    async def _follow(self) -> None:
        while True:
            try:
                revision = await self._relist()
                async for event in self.api.watch(TASK, resource_version=revision,
                                                  node=self.settings.name):
                    task = decode(Task, event["object"])
                    if event["type"] == "DELETED":
                        self.tasks.pop(_key(task), None)
                    else:
                        self.tasks[_key(task)] = task
                    self._wake.set()
            except ApiError as exc:
                log.warning("watching tasks: %s; retrying", exc.message)
                await asyncio.sleep(1.0)

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            with contextlib.suppress(ApiError):
                await self._relist()

    # -- keeping runners and containers in line ------------------------------------------

    def _spawn(self, task: Task) -> None:
        runner = TaskRunner(self.ctx, task)
        self.runners[_key(task)] = runner
        job = asyncio.create_task(runner.run(), name=f"task {task.metadata.name}")
        self._runner_tasks.add(job)
        job.add_done_callback(self._runner_tasks.discard)

    async def sync(self) -> None:
        for key, runner in list(self.runners.items()):
            if runner.done.is_set():
                del self.runners[key]
        present = set(await self.runtime.list_ids())
        for key, task in self.tasks.items():
            runner = self.runners.get(key)
            if runner is not None:
                runner.update(task)
            elif (task.spec.desired_state == "running"
                  or task.status.state not in TERMINAL_STATES
                  # Marked lost while this node was away, its container still here.
                  or launch.container_id(task) in present):
                self._spawn(task)
        for key, runner in self.runners.items():
            if key not in self.tasks:
                runner.stop(purge=True)  # the task object is gone: leave nothing behind
        for key, (task, status) in list(self._unreported.items()):
            if key in self.tasks:
                await self._report(task, status)
        if self._synced:
            await self._sweep_orphans()

    async def _sweep_orphans(self) -> None:
        """Containers and folders no task of ours accounts for: remove them."""
        wanted = {launch.container_id(t) for t in self.tasks.values()}
        wanted |= {r.cid for r in self.runners.values()}
        ids = set(await self.runtime.list_ids())
        with contextlib.suppress(FileNotFoundError):
            ids |= {d.name for d in await asyncio.to_thread(
                lambda: list(self.ctx.containers_dir.iterdir()))}
        for cid in sorted(ids - wanted):
            log.info("removing orphan container %s", cid)
            await self.runtime.stop(cid, grace_seconds=2)
            await self.runtime.remove(cid)
            directory: Path = self.ctx.container_dir(cid)
            await rootfs.unmount(directory)
            await self.network.detach(cid)
            await asyncio.to_thread(shutil.rmtree, directory, True)

    async def _sync_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 2.0)
            self._wake.clear()
            try:
                await self.sync()
            except Exception:
                log.exception("sync failed; trying again")

    # -- the process ---------------------------------------------------------------------

    def _locate(self, app: str, name: str) -> tuple[Path, str] | None:
        task = self.tasks.get((app, name))
        if task is None:
            return None
        cid = launch.container_id(task)
        return self.ctx.container_dir(cid), cid

    async def _credentials(self, stop: asyncio.Event) -> None:
        """Use this node's own credential from here on (join once, if need be)."""
        path = self.settings.state_dir / "credentials.json"
        delay = 0.5
        while not stop.is_set():
            try:
                token = await node_token(self.settings.server, self.settings.token,
                                         self.settings.name, path)
                break
            except JoinError as exc:
                if "NameTaken" in str(exc) or "held by an agent" in str(exc) or \
                        "invalid or expired token" in str(exc):
                    raise SystemExit(str(exc)) from None
                log.warning("%s; retrying", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 10.0)
        else:
            return
        await self.api.close()
        self.api = ApiClient(self.settings.server, token)

    async def run(self, stop: asyncio.Event) -> None:
        for d in (self.ctx.containers_dir, self.ctx.volumes_dir):
            await asyncio.to_thread(d.mkdir, parents=True, exist_ok=True)
        # Found by `skiff down` and tests, whoever started this agent.
        await asyncio.to_thread((self.settings.state_dir / "agent.pid").write_text,
                                f"{os.getpid()}\n")
        await self._check_runtime()
        await self._credentials(stop)
        await self.network.ensure()
        self.dns.set_upstreams(await asyncio.to_thread(read_node_upstreams))
        await self._until_registered(stop)
        runner = web.AppRunner(build_app(lambda: self._secret, self._locate, self.runtime,
                                         self.builds),
                               access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.address, self.settings.port,
                           reuse_address=True)
        await site.start()
        log.info("agent %s serving on %s:%d", self.settings.name, self.settings.address,
                 self.settings.port)
        loops = [asyncio.create_task(c) for c in (
            self._heartbeat(), self._follow(), self._resync(), self._sync_loop(),
            self.cluster.run(), self.volumes.run(), self._post_events())]
        if self.settings.image_gc_unused_for > 0:
            loops.append(asyncio.create_task(self.image_gc.run_forever()))
        try:
            await stop.wait()
        finally:
            for t in loops:
                t.cancel()
            # Containers keep running: a restarted agent adopts them.
            for t in list(self._runner_tasks):
                t.cancel()
            await asyncio.gather(*loops, *self._runner_tasks, return_exceptions=True)
            await self.dns.close()
            await runner.cleanup()
            await self.api.close()

    async def _check_runtime(self) -> None:
        """Refuse to start with an OCI runtime that does not work here, saying why."""
        binary = self.settings.oci_runtime
        try:
            proc = await asyncio.create_subprocess_exec(
                binary, "--version", stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT)
            out, _ = await proc.communicate()
        except OSError as exc:
            raise SystemExit(f"OCI runtime {binary!r} cannot run: {exc.strerror}") from None
        if proc.returncode != 0:
            raise SystemExit(f"OCI runtime {binary!r} fails: {out.decode(errors='replace')}")
        log.info("OCI runtime: %s", out.decode(errors="replace").splitlines()[0])

    async def _until_registered(self, stop: asyncio.Event) -> None:
        delay = 0.5
        while not stop.is_set():
            try:
                await self.register()
                return
            except ApiError as exc:
                log.warning("cannot register node %s: %s", self.settings.name, exc.message)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 10.0)
