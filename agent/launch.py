"""What to run for a task: the service spec merged with the image's defaults, Docker's way.

Pure: no I/O. The task runner supplies the paths (rootfs, bundle, network namespace,
/etc files) and gets a ContainerRequest back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from agent.images.models import ImageConfig
from agent.runtime.request import ContainerRequest, MountRequest
from skiff.manifest.units import parse_duration
from skiff.models.appspec import ServiceSpec
from skiff.models.objects import Task

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_GRACE_SECONDS = 10.0


class LaunchError(ValueError):
    """The task cannot be turned into a container (no command, bad mount...)."""


def container_id(task: Task) -> str:
    """Stable per task (its uid), short enough for runc, cgroups and veth names."""
    digest = hashlib.sha256((task.metadata.uid or task.metadata.name).encode()).hexdigest()
    return f"sk{digest[:22]}"


def command(spec: ServiceSpec, image: ImageConfig) -> list[str]:
    """Docker's rule: a service entrypoint replaces the image's and drops the image's CMD;
    a service command replaces the image's CMD."""
    if spec.entrypoint is not None:
        entrypoint = list(spec.entrypoint)
        cmd = list(spec.command) if spec.command is not None else []
    else:
        entrypoint = list(image.entrypoint or ())
        cmd = list(spec.command) if spec.command is not None else list(image.cmd or ())
    args = entrypoint + cmd
    if not args:
        raise LaunchError("no command: the image has no ENTRYPOINT or CMD and the service "
                          "sets neither entrypoint nor command")
    return args


def environment(spec: ServiceSpec, image: ImageConfig, hostname: str) -> dict[str, str]:
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname}
    env.update(image.env_map())
    env.update(spec.environment)
    return env


def hostname_of(task: Task) -> str:
    spec = task.spec.container
    return spec.hostname or f"{task.spec.service}-{task.spec.slot}".lower()[:63]


def stop_grace(spec: ServiceSpec) -> float:
    return parse_duration(spec.stop_grace_period) if spec.stop_grace_period else \
        DEFAULT_GRACE_SECONDS


@dataclass(frozen=True)
class Paths:
    bundle_dir: Path
    rootfs: Path
    netns_path: str | None
    hosts_file: Path | None
    resolv_file: Path | None
    volumes_dir: Path  # named volumes live in <volumes_dir>/<name>/_data


def _target_hash(target: str) -> str:
    return hashlib.sha256(target.encode()).hexdigest()[:8]


def mounts(spec: ServiceSpec, volumes_dir: Path, container: str, app: str
           ) -> list[MountRequest]:
    out = []
    for m in spec.volumes:
        if m.type == "tmpfs":
            out.append(MountRequest("tmpfs", m.target, read_only=m.read_only,
                                    size=m.tmpfs.size if m.tmpfs else None,
                                    mode=m.tmpfs.mode if m.tmpfs else None))
        elif m.type == "bind":
            if not m.source:
                raise LaunchError(f"bind mount {m.target} has no source")
            out.append(MountRequest("bind", m.target, m.source, m.read_only))
        else:
            # A named volume is its folder on this node (agent/mounts.py), by its cluster
            # name; an anonymous one belongs to its container.
            if m.source:
                source = volumes_dir / m.source / "_data"
            else:
                source = volumes_dir / f"anon-{container}-{_target_hash(m.target)}"
            out.append(MountRequest("bind", m.target, str(source), m.read_only))
    return out


def request(task: Task, image: ImageConfig, paths: Paths, cgroup_parent: str
            ) -> ContainerRequest:
    spec = task.spec.container
    cid = container_id(task)
    hostname = hostname_of(task)
    limits = spec.deploy.resources.limits if spec.deploy.resources else None
    return ContainerRequest(
        id=cid,
        bundle_dir=paths.bundle_dir,
        rootfs=paths.rootfs,
        args=command(spec, image),
        env=environment(spec, image, hostname),
        cwd=spec.working_dir or image.working_dir or "/",
        user=spec.user or image.user or None,
        hostname=hostname,
        netns_path=paths.netns_path,
        mounts=mounts(spec, paths.volumes_dir, cid, task.metadata.app or ""),
        hosts_file=paths.hosts_file,
        resolv_file=paths.resolv_file,
        memory_limit=limits.memory if limits else None,
        cpus=limits.cpus if limits else None,
        pids_limit=limits.pids if limits else None,
        cap_add=list(spec.cap_add),
        cap_drop=list(spec.cap_drop),
        privileged=spec.privileged,
        read_only=spec.read_only,
        init=spec.init,
        cgroup_parent=cgroup_parent,
        stop_signal=spec.stop_signal or image.stop_signal or "SIGTERM",
        labels={"skiff.app": task.metadata.app or "", "skiff.service": task.spec.service,
                "skiff.task": task.metadata.name, **spec.labels},
    )
