"""Facts about this node that shape every container's config (see spec.HostFacts).

Gathered once per agent (blocking reads of /proc, /sys and /dev: call from a thread)."""

from __future__ import annotations

import os
import resource
import shutil
import stat
from pathlib import Path

from agent.runtime import cgroups
from agent.runtime.spec import CAPABILITY_BITS, DEFAULT_NOFILE, HostDevice, HostFacts

# Only a static init works in any image (tini needs libc; busybox images have none).
INIT_CANDIDATES = ("tini-static", "/usr/bin/tini-static", "/usr/local/bin/tini-static")
# Docker skips these: they are per-container filesystems, not devices to pass through.
_SKIP_DEV = {"pts", "shm", "mqueue", "fd", "hugepages"}


def capabilities_from_mask(mask: int) -> frozenset[str]:
    return frozenset(name for name, bit in CAPABILITY_BITS.items() if mask >> bit & 1)


def own_capabilities(status_text: str | None = None) -> frozenset[str]:
    """Capabilities this process can hand on: in its bounding and permitted sets."""
    text = status_text if status_text is not None else Path("/proc/self/status").read_text()
    masks = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("CapBnd", "CapPrm"):
            masks[key] = int(value.strip(), 16)
    return capabilities_from_mask(masks.get("CapBnd", 0) & masks.get("CapPrm", 0))


def nofile_limit(caps: frozenset[str]) -> int:
    if "SYS_RESOURCE" in caps:
        return DEFAULT_NOFILE
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return DEFAULT_NOFILE if hard == resource.RLIM_INFINITY else min(DEFAULT_NOFILE, hard)


def swap_accounting() -> bool:
    memory = cgroups.memory_dir("/")
    return memory is not None and (memory / "memory.memsw.limit_in_bytes").exists()


def find_init_binary() -> str | None:
    for candidate in INIT_CANDIDATES:
        path = shutil.which(candidate)
        if path:
            return os.path.realpath(path)
    return None


def host_devices(root: Path = Path("/dev")) -> tuple[HostDevice, ...]:
    devices = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if not (directory == str(root) and d in _SKIP_DEV)]
        for name in files:
            path = Path(directory) / name
            try:
                st = path.lstat()
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode):
                kind = "c"
            elif stat.S_ISBLK(st.st_mode):
                kind = "b"
            else:
                continue
            devices.append(HostDevice(str(path), kind, os.major(st.st_rdev),
                                      os.minor(st.st_rdev), stat.S_IMODE(st.st_mode),
                                      st.st_uid, st.st_gid))
    return tuple(sorted(devices, key=lambda d: d.path))


def gather() -> HostFacts:
    caps = own_capabilities()
    return HostFacts(available_capabilities=caps, nofile_limit=nofile_limit(caps),
                     swap_accounting=swap_accounting(), init_binary=find_init_binary(),
                     host_devices=host_devices())
