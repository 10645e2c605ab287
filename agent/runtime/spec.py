"""ContainerRequest -> OCI runtime config.json, hardened the way Docker does it.

Pure: no file or process access. What depends on the host (which capabilities the agent
itself holds, its RLIMIT_NOFILE ceiling, swap accounting, the init binary, host devices for
privileged containers) comes in as ``HostFacts``, gathered once by ``host.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.runtime.request import ContainerRequest, MountRequest, RequestError
from agent.runtime.users import ResolvedUser

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Docker raises the open-files limit this high for every container.
DEFAULT_NOFILE = 1048576
CFS_PERIOD_US = 100_000
INIT_PATH = "/sbin/skiff-init"

# Bit number of every capability the kernel (up to 6.x) and runc 1.1 know.
CAPABILITY_BITS: dict[str, int] = {name: bit for bit, name in enumerate((
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN",
    "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE",
    "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
    "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
    "PERFMON", "BPF", "CHECKPOINT_RESTORE"))}
ALL_CAPABILITIES = frozenset(CAPABILITY_BITS)

# Docker's default set (moby oci/caps): enough for typical daemons that start as root and
# drop privileges, nothing that reaches the host kernel.
DEFAULT_CAPABILITIES = frozenset({
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"})

MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


@dataclass(frozen=True)
class HostDevice:
    """A device node of the host, passed through to privileged containers."""

    path: str
    type: str  # "c" or "b"
    major: int
    minor: int
    file_mode: int = 0o666
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class HostFacts:
    # Capabilities the runtime itself may grant: runc cannot give a container what is not in
    # the agent's own bounding set (this sandbox lacks SYS_RESOURCE). None = all of them.
    available_capabilities: frozenset[str] | None = None
    # RLIMIT_NOFILE for the container; without CAP_SYS_RESOURCE it cannot exceed the
    # agent's own hard limit, or runc fails with "error setting rlimit type 7".
    nofile_limit: int = DEFAULT_NOFILE
    # memory.memsw.* exists only with swap accounting; without it runc refuses "swap".
    swap_accounting: bool = True
    init_binary: str | None = None  # host path of a static init (tini-static)
    host_devices: tuple[HostDevice, ...] = ()


def capability_mask(names: frozenset[str] | set[str]) -> int:
    """The /proc/<pid>/status Cap* bit mask of a set of capability names."""
    mask = 0
    for name in names:
        mask |= 1 << CAPABILITY_BITS[name]
    return mask


def _cap_name(name: str) -> str:
    text = name.strip().upper()
    text = text.removeprefix("CAP_")
    if text != "ALL" and text not in CAPABILITY_BITS:
        raise RequestError(f"unknown capability {name!r}")
    return text


def effective_capabilities(req: ContainerRequest, host: HostFacts) -> frozenset[str]:
    """Docker's TweakCapabilities: defaults - drop + add; ALL in drop starts from nothing,
    ALL in add starts from everything; privileged gets everything the host can give."""
    available = host.available_capabilities or ALL_CAPABILITIES
    if req.privileged:
        return ALL_CAPABILITIES & available
    add = {_cap_name(c) for c in req.cap_add}
    drop = {_cap_name(c) for c in req.cap_drop}
    if "ALL" in add:
        caps = set(ALL_CAPABILITIES) - (drop - {"ALL"})
    elif "ALL" in drop:
        caps = add
    else:
        caps = (set(DEFAULT_CAPABILITIES) - drop) | add
    missing = (add - {"ALL"}) - available
    if missing:
        raise RequestError(f"capabilities {', '.join(sorted(missing))} are not available "
                           "on this node (not in the agent's bounding set)")
    return frozenset(caps & available)


def _linux_caps(names: frozenset[str], user: ResolvedUser) -> dict[str, list[str]]:
    caps = sorted(f"CAP_{n}" for n in names)
    if user.uid == 0:
        return {"bounding": caps, "effective": caps, "permitted": caps}
    # Like Docker since 20.10.14 (CVE-2022-24769): a non-root process gets no effective or
    # permitted capabilities, exactly as after an execve by a non-root user; the bounding
    # set still limits what setuid binaries could gain.
    return {"bounding": caps}


def _env(req: ContainerRequest, user: ResolvedUser) -> list[str]:
    env = dict(req.env)
    env.setdefault("PATH", DEFAULT_PATH)
    if req.hostname:
        env.setdefault("HOSTNAME", req.hostname)
    env.setdefault("HOME", user.home)
    return [f"{k}={v}" for k, v in env.items()]


def _standard_mounts(privileged: bool) -> list[dict[str, Any]]:
    sys_mode = "rw" if privileged else "ro"
    return [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                     "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", sys_mode]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", sys_mode]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    ]


def _user_mount(mount: MountRequest) -> dict[str, Any]:
    if mount.type == "tmpfs":
        options = ["nosuid", "nodev"]
        if mount.size is not None:
            options.append(f"size={mount.size}")
        if mount.mode is not None:
            options.append(f"mode={mount.mode:o}")
        options.append("ro" if mount.read_only else "rw")
        return {"destination": mount.target, "type": "tmpfs", "source": "tmpfs",
                "options": options}
    return {"destination": mount.target, "type": "bind", "source": mount.source,
            "options": ["rbind", "rprivate", "ro" if mount.read_only else "rw"]}


def _mounts(req: ContainerRequest, host: HostFacts) -> list[dict[str, Any]]:
    extra: list[dict[str, Any]] = []
    for target, source in (("/etc/hosts", req.hosts_file), ("/etc/resolv.conf",
                                                             req.resolv_file)):
        if source is not None:
            extra.append({"destination": target, "type": "bind", "source": str(source),
                          "options": ["rbind", "rprivate", "ro"]})
    if req.init:
        if host.init_binary is None:
            raise RequestError("init requested but no init binary (tini-static) on this node")
        extra.append({"destination": INIT_PATH, "type": "bind", "source": host.init_binary,
                      "options": ["rbind", "rprivate", "ro"]})
    # Parents before children, like Docker: a bind at /data must not hide one at /data/x.
    user = sorted((_user_mount(m) for m in req.mounts),
                  key=lambda m: len([p for p in m["destination"].split("/") if p]))
    overridden = {m["destination"] for m in [*extra, *user]}
    standard = [m for m in _standard_mounts(req.privileged)
                if m["destination"] not in overridden]
    return [*standard, *extra, *user]


def _device_rules(privileged: bool) -> list[dict[str, Any]]:
    if privileged:
        return [{"allow": True, "access": "rwm"}]

    def allow(kind: str, major: int | None, minor: int | None, access: str = "rwm"
              ) -> dict[str, Any]:
        rule: dict[str, Any] = {"allow": True, "type": kind, "access": access}
        if major is not None:
            rule["major"] = major
        if minor is not None:
            rule["minor"] = minor
        return rule

    # Deny everything, then what runc's default device set needs: mknod of anything (the
    # node is useless without rw), null, zero, full, random, urandom, tty, console, ptmx and
    # the pts slaves.
    return [
        {"allow": False, "access": "rwm"},
        allow("c", None, None, "m"), allow("b", None, None, "m"),
        allow("c", 1, 3), allow("c", 1, 5), allow("c", 1, 7), allow("c", 1, 8),
        allow("c", 1, 9), allow("c", 5, 0), allow("c", 5, 1), allow("c", 5, 2),
        allow("c", 136, None),
    ]


def _resources(req: ContainerRequest, host: HostFacts) -> dict[str, Any]:
    resources: dict[str, Any] = {"devices": _device_rules(req.privileged)}
    if req.memory_limit is not None:
        memory: dict[str, Any] = {"limit": req.memory_limit}
        if host.swap_accounting:
            # memory+swap = memory: no swapping past the limit, so the limit really limits.
            memory["swap"] = req.memory_limit
        resources["memory"] = memory
    if req.cpus is not None:
        resources["cpu"] = {"quota": max(1000, round(req.cpus * CFS_PERIOD_US)),
                            "period": CFS_PERIOD_US}
    if req.pids_limit is not None:
        resources["pids"] = {"limit": req.pids_limit}
    return resources


def oci_config(req: ContainerRequest, user: ResolvedUser,
               host: HostFacts | None = None) -> dict[str, Any]:
    """The bundle's config.json for ``req``, with ``user`` already resolved in the rootfs."""
    host = host or HostFacts()
    caps = effective_capabilities(req, host)
    args = [INIT_PATH, "--", *req.args] if req.init else list(req.args)
    user_spec: dict[str, Any] = {"uid": user.uid, "gid": user.gid}
    if user.additional_gids:
        user_spec["additionalGids"] = list(user.additional_gids)
    process: dict[str, Any] = {
        "terminal": False,
        "user": user_spec,
        "args": args,
        "env": _env(req, user),
        "cwd": req.cwd,
        "capabilities": _linux_caps(caps, user),
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": host.nofile_limit,
                     "soft": host.nofile_limit}],
        "noNewPrivileges": not req.privileged,
    }
    network: dict[str, Any] = {"type": "network"}
    if req.netns_path:
        network["path"] = str(req.netns_path)
    linux: dict[str, Any] = {
        # cgroupfs driver: an absolute path under every hierarchy ("a:b:c" is systemd's).
        "cgroupsPath": req.cgroup_path,
        "resources": _resources(req, host),
        "namespaces": [{"type": "pid"}, network, {"type": "ipc"}, {"type": "uts"},
                       {"type": "mount"}],
    }
    if req.privileged:
        linux["devices"] = [
            {"path": d.path, "type": d.type, "major": d.major, "minor": d.minor,
             "fileMode": d.file_mode, "uid": d.uid, "gid": d.gid}
            for d in host.host_devices]
    else:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
    config: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": str(req.rootfs), "readonly": req.read_only},
        "mounts": _mounts(req, host),
        "linux": linux,
        "annotations": dict(req.labels),
    }
    if req.hostname:
        config["hostname"] = req.hostname
    return config
