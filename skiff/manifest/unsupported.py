"""Keys of the compose specification that skiff does not implement: named in a warning
and set aside before the schema sees the document, so a compose file written for Docker
applies unchanged; with `--strict` each one is an error instead. A key the compose
specification does not have at all (a typo) stays an error: the schema names it.

Each entry says what happens without it, so the warning tells the user what they lose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skiff.manifest.errors import KeyPath

IGNORED = "not supported by skiff; ignored"

TOP_LEVEL: Mapping[str, str] = {
    "configs": IGNORED, "secrets": IGNORED, "include": IGNORED, "models": IGNORED,
}

SERVICE: Mapping[str, str] = {
    **{k: IGNORED for k in (
        "annotations", "attach", "blkio_config", "cgroup", "cgroup_parent", "configs",
        "cpu_count", "cpu_percent", "cpu_period", "cpu_quota", "cpu_rt_period",
        "cpu_rt_runtime", "cpu_shares", "cpuset", "credential_spec", "develop",
        "device_cgroup_rules", "devices", "dns_opt", "domainname", "external_links",
        "gpus", "group_add", "ipc", "isolation", "label_file", "links", "logging",
        "mac_address", "mem_swappiness", "oom_kill_disable", "oom_score_adj", "pid",
        "platform", "post_start", "pre_stop", "provider", "runtime", "secrets",
        "security_opt", "stdin_open", "storage_opt", "sysctls", "tty", "ulimits",
        "use_api_socket", "userns_mode", "uts", "volumes_from", "extends")},
    "container_name": "ignored: a service has replicas, named <app>/<service>.<slot>",
    "dns": "ignored: containers use their node's DNS server, which forwards out",
    "dns_search": "ignored: containers use their node's DNS server",
    "extra_hosts": IGNORED,
    "cpus": "ignored: use deploy.resources.limits.cpus",
    "mem_limit": "ignored: use deploy.resources.limits.memory",
    "mem_reservation": "ignored: use deploy.resources.reservations.memory",
    "memswap_limit": "ignored: memory limits include swap",
    "pids_limit": "ignored: use deploy.resources.limits.pids",
    "shm_size": "ignored: /dev/shm is 64 MiB, as Docker's default",
    "network_mode": "ignored: services join the app's networks",
    "pull_policy": "ignored: images are pulled when a node lacks them",
    "scale": "ignored: use deploy.replicas",
}

DEPLOY: Mapping[str, str] = {
    "endpoint_mode": "ignored: published ports go through the routing mesh (vip)",
}

RESERVATIONS: Mapping[str, str] = {"generic_resources": IGNORED, "devices": IGNORED}

BUILD: Mapping[str, str] = {k: IGNORED for k in (
    "dockerfile_inline", "ssh", "cache_from", "cache_to", "additional_contexts",
    "entitlements", "extra_hosts", "isolation", "privileged", "labels", "network",
    "no_cache", "platforms", "pull", "secrets", "shm_size", "tags", "ulimits")}

NETWORK: Mapping[str, str] = {"enable_ipv6": IGNORED}
VOLUME: Mapping[str, str] = {}


def _strip(entry: Any, known: Mapping[str, str], path: KeyPath,
           found: list[tuple[KeyPath, str]]) -> None:
    if not isinstance(entry, dict):
        return
    for key in [k for k in entry if k in known]:
        found.append(((*path, key), known[key]))
        del entry[key]


def set_aside(doc: dict[str, Any]) -> list[tuple[KeyPath, str]]:
    """Remove (in place) every key of `doc` that compose has and skiff does not
    implement; each one's path and what the user should know."""
    found: list[tuple[KeyPath, str]] = []
    _strip(doc, TOP_LEVEL, (), found)
    services = doc.get("services")
    for name, svc in (services.items() if isinstance(services, dict) else ()):
        path: KeyPath = ("services", name)
        _strip(svc, SERVICE, path, found)
        if not isinstance(svc, dict):
            continue
        if isinstance(svc.get("build"), dict):
            _strip(svc["build"], BUILD, (*path, "build"), found)
        deploy = svc.get("deploy")
        _strip(deploy, DEPLOY, (*path, "deploy"), found)
        if isinstance(deploy, dict) and isinstance(deploy.get("resources"), dict):
            _strip(deploy["resources"].get("reservations"), RESERVATIONS,
                   (*path, "deploy", "resources", "reservations"), found)
    for section, known in (("networks", NETWORK), ("volumes", VOLUME)):
        entries = doc.get(section)
        for name, entry in (entries.items() if isinstance(entries, dict) else ()):
            _strip(entry, known, (section, name), found)
    return found
