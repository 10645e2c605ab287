"""One runner per task on this node: prepare, start, watch, restart, stop, clean up.

The runner owns its container from start to removal and reports every change of
observed state (assigned → pulling → starting → running → failed/complete/shutdown).
After an agent restart a new runner adopts a container that is still running instead
of starting it again. Every clean-up step tolerates "already gone".
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from agent import health, launch, rootfs
from agent.context import NodeContext
from agent.images.errors import ImageError
from agent.images.models import Image
from agent.images.registry.progress import BlobEvent
from agent.images.unpack import lower_dirs
from agent.mounts import MountSetupError, check_bind_source, ensure_volume, fill_volume
from agent.netsync import local_address
from agent.network import NetworkError, host_resolv_conf, hosts_file, resolv_conf
from agent.network.files import cluster_resolv_conf
from agent.restart import RESET_AFTER, decide
from agent.runtime.container import ContainerStartError, ContainerState
from agent.runtime.request import RequestError
from agent.runtime.runc import RuncError, RuncTimeout
from skiff.models.appspec import ServiceSpec
from skiff.models.objects import Task, TaskStatus

log = logging.getLogger(__name__)
EXIT_POLL = 0.25
STATUS_POLL = 5.0
LOG_LINES_ON_FAILURE = 5
# How long a starting task waits for its networks to be set up on this node before it
# fails (and is retried by its restart policy) saying which network is missing and why.
NETWORK_WAIT = 30.0
PULL_REPORT_SECONDS = 1.0


class PrepareError(RuntimeError):
    """The task cannot start here (image missing, bad spec); shown on the task."""


# How long a replica with published ports keeps running once told to stop, before its
# stop signal: every node's mesh drops it within this (Endpoints, then a settled round).
MESH_DRAIN_SECONDS = 1.5


def task_events(before: TaskStatus, after: TaskStatus) -> list[tuple[str, str, str]]:
    """(reason, message, type) of the Events a status change is worth."""
    out = []
    if after.state != before.state:
        if before.state == "pulling" and after.state == "starting":
            out.append(("Pulled", "image ready on this node", "Normal"))
        elif after.state == "pulling" and "pulling" not in before.state:
            out.append(("Pulling", after.message, "Normal"))
        elif after.state == "running":
            out.append(("Started", f"container {after.container_id or ''}".strip(),
                        "Normal"))
        elif after.state == "failed" and after.oom_killed:
            out.append(("OOMKilled", after.message, "Warning"))
        elif after.state == "failed":
            out.append(("Failed", after.message, "Warning"))
        elif after.state == "complete":
            out.append(("Completed", after.message, "Normal"))
        elif after.state == "shutdown":
            out.append(("Killed", after.message or "stopped", "Normal"))
    if after.restarts > before.restarts:
        out.append(("Restarted", f"restart {after.restarts}", "Normal"))
    if after.health != before.health and after.health in ("healthy", "unhealthy"):
        out.append(("Healthy", "health check passes", "Normal") if after.health ==
                   "healthy" else ("Unhealthy", "health check fails", "Warning"))
    return out


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TaskRunner:
    def __init__(self, ctx: NodeContext, task: Task) -> None:
        self.ctx = ctx
        self.task = task
        self.cid = launch.container_id(task)
        self.dir = ctx.container_dir(self.cid)
        self.status = dataclasses.replace(task.status)
        self._stop = asyncio.Event()
        if task.spec.desired_state != "running":
            self._stop.set()  # only here to stop and clean up what is left of it
        self._purge = False  # also remove logs (the task object is gone)
        self.done = asyncio.Event()
        self._unhealthy = False  # the last exit was the health check stopping it

    # -- what the agent tells the runner -------------------------------------------------

    def update(self, task: Task) -> None:
        self.task = task
        if task.spec.desired_state != "running":
            self._stop.set()

    def stop(self, purge: bool = False) -> None:
        self._purge = self._purge or purge
        self._stop.set()

    @property
    def log_path(self) -> Path:
        return self.dir / "log.json"

    # -- reporting -----------------------------------------------------------------------

    async def _report(self, **changes: object) -> None:
        before = self.status
        self.status = dataclasses.replace(self.status, updated_at=now(), **changes)  # type: ignore[arg-type]
        if self.ctx.event is not None:
            for reason, message, kind in task_events(before, self.status):
                self.ctx.event(self.task, reason, message, kind)
        await self.ctx.report(self.task, self.status)

    # -- the life of the container -----------------------------------------------------

    async def run(self) -> None:
        try:
            await self._life()
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not take the agent or other tasks down
            log.exception("task %s: runner failed", self.task.metadata.name)
            with contextlib.suppress(Exception):
                await self._report(state="failed", message="agent error; see the agent log")
        finally:
            self.done.set()

    async def _life(self) -> None:
        restarts = self.task.status.restarts
        quick = 0
        current = await self.ctx.runtime.status(self.cid)
        adopted = current.state in (ContainerState.RUNNING, ContainerState.STARTING)
        if adopted:
            log.info("task %s: adopting running container %s", self.task.metadata.name,
                     self.cid)
        ended = current.state is ContainerState.STOPPED
        while not self._stop.is_set():
            started = time.monotonic()
            if not adopted and not ended:
                if not await self._start():
                    exit_code: int | None = None
                    oom = False
                else:
                    exit_code, oom = await self._wait_running()
            elif adopted:
                if self.status.state != "running" or self.status.container_id != self.cid:
                    await self._report(state="running", container_id=self.cid,
                                       message="", pid=current.pid)
                exit_code, oom = await self._wait_running()
            else:
                exit_code, oom = current.exit_code, current.oom_killed
            adopted = ended = False
            if self._stop.is_set():
                break
            quick = quick + 1 if time.monotonic() - started < RESET_AFTER else 1
            if not await self._after_exit(exit_code, oom, restarts, quick):
                await self._stop.wait()
                break
            restarts += 1
            await self._report(restarts=restarts)
            await self._discard_container()
        await self._shutdown()

    async def _start(self) -> bool:
        """Prepare and start; False (with the reason reported) if it could not start."""
        spec = self.task.spec.container
        try:
            await self._report(state="pulling", message=f"resolving image {spec.image}")
            image = await self._image(spec.image)
            await self._report(state="starting", message="")
            await asyncio.to_thread(self.dir.mkdir, parents=True, exist_ok=True)
            root = await rootfs.mount(self.dir, await lower_dirs(self.ctx.images, image))
            hostname = launch.hostname_of(self.task)
            ip, addresses, nameserver = await self._attach(hostname)
            await asyncio.to_thread(self._write_etc, hostname, ip, nameserver)
            await asyncio.to_thread((self.dir / "exit.json").unlink, missing_ok=True)
            await self._prepare_mounts(spec, root)
            request = launch.request(self.task, image.config, launch.Paths(
                bundle_dir=self.dir / "bundle", rootfs=root,
                netns_path=str(self.ctx.network.netns_path(self.cid)),
                hosts_file=self.dir / "hosts", resolv_file=self.dir / "resolv.conf",
                volumes_dir=self.ctx.volumes_dir), self.ctx.cgroup_parent)
            pid = await self.ctx.runtime.create_and_start(request, self.log_path,
                                                          self.dir / "exit.json")
        except (PrepareError, launch.LaunchError, ImageError, NetworkError, RequestError,
                rootfs.RootfsError, ContainerStartError, MountSetupError, OSError) as exc:
            await self._report(state="failed", message=str(exc), exit_code=None,
                               finished_at=now())
            return False
        await self._report(state="running", message="", container_id=self.cid,
                           ip=ip, networks=addresses, pid=pid or None, started_at=now(),
                           finished_at=None, exit_code=None, oom_killed=False)
        return True

    async def _prepare_mounts(self, spec: ServiceSpec, root: Path) -> None:
        """Named volumes made and claimed for this node (filled from the image once,
        unless nocopy), bind sources checked, anonymous volumes' folders made."""
        volumes_dir = self.ctx.volumes_dir
        for m in spec.volumes:
            if m.type == "volume" and m.source:
                if self.ctx.volumes is not None:
                    await self.ctx.volumes.claim(m.source)
                else:
                    await asyncio.to_thread(ensure_volume, volumes_dir, m.source)
                if not (m.volume and m.volume.nocopy):
                    await asyncio.to_thread(fill_volume, volumes_dir, m.source, root,
                                            m.target)
            elif m.type == "bind" and m.source:
                create = bool(m.bind and m.bind.create_host_path)
                await asyncio.to_thread(check_bind_source, m.source, create, self.ctx.node)
        for mount in launch.mounts(spec, volumes_dir, self.cid, self.task.metadata.app or ""):
            if mount.type == "bind" and mount.source.startswith(f"{volumes_dir}/anon-"):
                await asyncio.to_thread(Path(mount.source).mkdir, parents=True,
                                        exist_ok=True)

    async def _image(self, ref: str) -> Image:
        """The image from this node's store, or pulled, with the pull's progress in the
        task's status (at most one report per PULL_REPORT_SECONDS, and the last one)."""
        latest: list[BlobEvent] = []
        changed = asyncio.Event()

        def seen(event: BlobEvent) -> None:
            latest[:] = [event]
            changed.set()

        async def reporter() -> None:
            while True:
                await changed.wait()
                changed.clear()
                e = latest[0]
                await self._report(message=f"pulling {ref}: {e.kind} {e.index}/{e.total} "
                                           f"{e.action} ({e.size} bytes)")
                await asyncio.sleep(PULL_REPORT_SECONDS)

        job = asyncio.create_task(reporter())
        try:
            return await self.ctx.images_source.ensure(ref, seen)
        finally:
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job

    async def _attach(self, hostname: str) -> tuple[str, dict[str, str], str | None]:
        """Put the container on its networks: its first address, network -> address, and
        the name server its resolv.conf names (the node's DNS on the first network)."""
        names = sorted(self.task.spec.container.networks)
        cluster = self.ctx.cluster
        if not names or cluster is None:
            # No cluster networks (an agent run without them): the node's own bridge.
            endpoint = await self.ctx.network.attach(self.cid)
            return str(endpoint.ip.ip), {}, None
        configs = []
        for name in names:
            if name not in cluster.configs:
                await self._report(message=f"waiting for network {name} on this node")
            configs.append(await cluster.config(name, NETWORK_WAIT))
        endpoints = await self.ctx.network.attach_networks(self.cid, configs)
        addresses = {ep.network: str(ep.ip.ip) for ep in endpoints}
        cluster.add_local(self.cid, local_address(
            self.ctx.node, self.ctx.vtep, self.task.metadata.name, hostname, addresses))
        return str(endpoints[0].ip.ip), addresses, str(endpoints[0].gateway)

    def _write_etc(self, hostname: str, ip: str, nameserver: str | None) -> None:
        (self.dir / "hosts").write_text(hosts_file(hostname, ip))
        host = host_resolv_conf()
        text = resolv_conf(host) if nameserver is None else cluster_resolv_conf(
            nameserver, host)
        (self.dir / "resolv.conf").write_text(text)

    async def _wait_running(self) -> tuple[int | None, bool]:
        """Until the container exits, probing its health meanwhile if it has a check."""
        self._unhealthy = False
        config = await self._health_config()
        if config is None:
            if self.status.health is not None:
                await self._report(health=None)
            return await self._wait_exit()
        monitor = asyncio.create_task(self._monitor(config))
        try:
            return await self._wait_exit()
        finally:
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await monitor

    async def _health_config(self) -> health.HealthConfig | None:
        spec = self.task.spec.container
        try:
            image = await self.ctx.images.resolve(spec.image)
        except ImageError:
            image = None
        return health.effective(spec.healthcheck,
                                image.config.healthcheck if image is not None else None)

    async def _monitor(self, config: health.HealthConfig) -> None:
        """Probe every interval (Docker's rules in agent/health.py); an unhealthy
        container is stopped, so its restart policy replaces it."""
        tracker = health.HealthTracker(config, time.monotonic())
        await self._report(health="starting")
        while True:
            await asyncio.sleep(config.interval)
            try:
                result = await self.ctx.runtime.exec(self.cid, list(config.argv),
                                                     timeout=config.timeout)
                passed, output = result.exit_code == 0, (result.stdout + result.stderr)
            except (RuncTimeout, RuncError) as exc:
                passed, output = False, str(exc)
            before = tracker.status
            after = tracker.observe(passed, time.monotonic())
            if after != before:
                await self._report(health=after)
            if after == "unhealthy":
                self._unhealthy = True
                last = output.strip().splitlines()[-1:] if output.strip() else []
                log.info("task %s: unhealthy after %d failed checks%s; stopping it",
                         self.task.metadata.name, tracker.failures,
                         f" ({last[0][:200]})" if last else "")
                await self.ctx.runtime.stop(
                    self.cid, grace_seconds=launch.stop_grace(self.task.spec.container))
                return

    async def _wait_exit(self) -> tuple[int | None, bool]:
        """Until the container exits (its shim writes the exit record) or a stop is asked."""
        exit_path = self.dir / "exit.json"
        last_check = time.monotonic()
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), EXIT_POLL)
            if self._stop.is_set():
                break
            exists = await asyncio.to_thread(exit_path.exists)
            if exists or time.monotonic() - last_check > STATUS_POLL:
                last_check = time.monotonic()
                status = await self.ctx.runtime.status(self.cid)
                if status.state in (ContainerState.STOPPED, ContainerState.MISSING):
                    return status.exit_code, status.oom_killed
        return None, False

    async def _after_exit(self, exit_code: int | None, oom: bool, restarts: int,
                          quick: int) -> bool:
        """Report how it ended; True if the policy restarts it (after its delay)."""
        spec = self.task.spec.container
        if exit_code is None and self.status.state == "failed":
            message = self.status.message  # it never started; the reason is reported
            code_for_policy = 1
        else:
            code_for_policy = exit_code if exit_code is not None else 1
            message = "OOMKilled" if oom else f"exited with code {exit_code}"
            if self._unhealthy:
                message = f"unhealthy (stopped by its health check); {message}"
            if code_for_policy != 0:
                lines = await self.ctx.runtime.last_log_lines(self.cid, LOG_LINES_ON_FAILURE)
                if lines:
                    message += "; last output: " + " | ".join(line[-200:] for line in lines)
        decision = decide(spec, code_for_policy, restarts, quick)
        state = "complete" if exit_code == 0 else "failed"
        if decision.restart:
            await self._report(state=state, exit_code=exit_code, oom_killed=oom,
                               finished_at=now(),
                               message=f"{message}; restarting in {decision.delay:g}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), decision.delay)
            return not self._stop.is_set()
        await self._report(state=state, exit_code=exit_code, oom_killed=oom,
                           finished_at=now(), message=f"{message}; {decision.reason}")
        return False

    async def _discard_container(self) -> None:
        await self.ctx.runtime.remove(self.cid)

    async def _shutdown(self) -> None:
        """Stop (grace period, then SIGKILL), then remove everything this task made. A
        replica behind published ports first gets a moment out of the routing mesh (it
        is not ready as soon as it is to stop), so no new connection reaches a server
        that is going away."""
        spec = self.task.spec.container
        if spec.ports and self.task.spec.desired_state == "shutdown" and \
                self.status.state == "running":
            await asyncio.sleep(MESH_DRAIN_SECONDS)
        final = await self.ctx.runtime.stop(self.cid, grace_seconds=launch.stop_grace(spec))
        await self.ctx.runtime.remove(self.cid)
        await rootfs.unmount(self.dir)
        await self.ctx.network.detach(self.cid)
        if self.ctx.cluster is not None:
            self.ctx.cluster.remove_local(self.cid)
        await asyncio.to_thread(self._remove_dir)
        if self.status.state not in ("shutdown",) and not self._purge:
            code = final.exit_code if final.exit_code is not None else self.status.exit_code
            await self._report(state="shutdown", exit_code=code, finished_at=now(),
                               message="stopped")

    def _remove_dir(self) -> None:
        if self._purge:
            shutil.rmtree(self.dir, ignore_errors=True)
            return
        # Keep the log (and exit record) for `skiff logs` until the task object goes.
        for name in ("upper", "work", "rootfs", "bundle", "hosts", "resolv.conf"):
            path = self.dir / name
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
