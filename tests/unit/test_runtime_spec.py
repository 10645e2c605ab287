"""config.json from a ContainerRequest: tables of request -> what Docker would do. No I/O."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.runtime.request import ContainerRequest, MountRequest, RequestError
from agent.runtime.spec import (
    ALL_CAPABILITIES,
    DEFAULT_CAPABILITIES,
    INIT_PATH,
    MASKED_PATHS,
    READONLY_PATHS,
    HostDevice,
    HostFacts,
    capability_mask,
    oci_config,
)
from agent.runtime.users import ResolvedUser

ROOT = ResolvedUser(0, 0, (), "/root")
DOCKER_DEFAULT_MASK = 0xA80425FB


def request(**kw: Any) -> ContainerRequest:
    kw.setdefault("args", ["sh", "-c", "echo hi"])
    return ContainerRequest(id=kw.pop("id", "web-1"), bundle_dir=Path("/b/web-1"),
                            rootfs=Path("/r/web-1"), cgroup_parent="skiff/node1", **kw)


def caps(config: dict[str, Any], which: str = "effective") -> set[str]:
    return {c.removeprefix("CAP_") for c in config["process"]["capabilities"].get(which, [])}


def test_default_capabilities_are_dockers() -> None:
    config = oci_config(request(), ROOT)
    assert capability_mask(DEFAULT_CAPABILITIES) == DOCKER_DEFAULT_MASK
    for which in ("bounding", "effective", "permitted"):
        assert caps(config, which) == DEFAULT_CAPABILITIES
    assert "inheritable" not in config["process"]["capabilities"]
    assert "ambient" not in config["process"]["capabilities"]
    assert config["process"]["noNewPrivileges"] is True


@pytest.mark.parametrize(("add", "drop", "expected"), [
    ([], ["NET_RAW"], DEFAULT_CAPABILITIES - {"NET_RAW"}),
    (["SYS_ADMIN"], [], DEFAULT_CAPABILITIES | {"SYS_ADMIN"}),
    (["CAP_NET_ADMIN"], ["cap_chown"], DEFAULT_CAPABILITIES - {"CHOWN"} | {"NET_ADMIN"}),
    ([], ["ALL"], set()),
    (["KILL"], ["ALL"], {"KILL"}),
    (["ALL"], [], ALL_CAPABILITIES),
    (["ALL"], ["SYS_ADMIN"], ALL_CAPABILITIES - {"SYS_ADMIN"}),
    (["NET_RAW"], ["NET_RAW"], DEFAULT_CAPABILITIES),  # add wins, as in Docker
])
def test_cap_add_and_drop(add: list[str], drop: list[str], expected: set[str]) -> None:
    assert caps(oci_config(request(cap_add=add, cap_drop=drop), ROOT)) == set(expected)


def test_unknown_capability_is_refused() -> None:
    with pytest.raises(RequestError, match="unknown capability"):
        oci_config(request(cap_add=["FLY"]), ROOT)


def test_capabilities_the_node_lacks() -> None:
    host = HostFacts(available_capabilities=ALL_CAPABILITIES - {"SYS_RESOURCE"})
    with pytest.raises(RequestError, match="SYS_RESOURCE"):
        oci_config(request(cap_add=["SYS_RESOURCE"]), ROOT, host)
    # ALL and privileged quietly mean "all this node can give".
    assert "SYS_RESOURCE" not in caps(oci_config(request(cap_add=["ALL"]), ROOT, host))
    assert caps(oci_config(request(privileged=True), ROOT, host)) == \
        ALL_CAPABILITIES - {"SYS_RESOURCE"}


def test_non_root_gets_only_a_bounding_set() -> None:
    config = oci_config(request(), ResolvedUser(1000, 1000, (50,), "/home/app"))
    assert set(config["process"]["capabilities"]) == {"bounding"}
    assert caps(config, "bounding") == DEFAULT_CAPABILITIES
    assert config["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [50]}
    assert "HOME=/home/app" in config["process"]["env"]


def test_masked_and_readonly_paths_and_read_only_sys() -> None:
    config = oci_config(request(), ROOT)
    assert set(config["linux"]["maskedPaths"]) == set(MASKED_PATHS)
    assert {"/proc/kcore", "/proc/keys", "/sys/firmware", "/proc/timer_list",
            "/sys/devices/virtual/powercap"} <= set(MASKED_PATHS)
    assert config["linux"]["readonlyPaths"] == list(READONLY_PATHS)
    mounts = {m["destination"]: m for m in config["mounts"]}
    assert "ro" in mounts["/sys"]["options"]
    assert "ro" in mounts["/sys/fs/cgroup"]["options"]
    assert [m["destination"] for m in config["mounts"][:7]] == [
        "/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"]


def test_privileged_gets_everything() -> None:
    dev = HostDevice("/dev/sda", "b", 8, 0, 0o660, 0, 6)
    config = oci_config(request(privileged=True), ROOT, HostFacts(host_devices=(dev,)))
    assert caps(config) == ALL_CAPABILITIES
    assert config["process"]["noNewPrivileges"] is False
    assert "maskedPaths" not in config["linux"] and "readonlyPaths" not in config["linux"]
    assert config["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert config["linux"]["devices"][0]["path"] == "/dev/sda"
    assert "rw" in {m["destination"]: m for m in config["mounts"]}["/sys"]["options"]


def test_devices_deny_all_but_the_defaults() -> None:
    rules = oci_config(request(), ROOT)["linux"]["resources"]["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}
    allowed = {(r["type"], r.get("major"), r.get("minor")) for r in rules[1:] if r["allow"]}
    assert {("c", 1, 3), ("c", 1, 5), ("c", 1, 8), ("c", 1, 9), ("c", 5, 2),
            ("c", 136, None)} <= allowed
    assert "devices" not in oci_config(request(), ROOT)["linux"]


def test_namespaces_and_netns_path() -> None:
    config = oci_config(request(), ROOT)
    types = [n["type"] for n in config["linux"]["namespaces"]]
    assert sorted(types) == ["ipc", "mount", "network", "pid", "uts"]  # no user namespace
    assert all("path" not in n for n in config["linux"]["namespaces"])
    joined = oci_config(request(netns_path="/run/netns/c1"), ROOT)
    assert {"type": "network", "path": "/run/netns/c1"} in joined["linux"]["namespaces"]


@pytest.mark.parametrize(("kw", "resources"), [
    ({}, {}),
    ({"memory_limit": 64 << 20}, {"memory": {"limit": 64 << 20, "swap": 64 << 20}}),
    ({"cpus": 1.5}, {"cpu": {"quota": 150_000, "period": 100_000}}),
    ({"cpus": 0.001}, {"cpu": {"quota": 1000, "period": 100_000}}),  # the kernel's floor
    ({"pids_limit": 100}, {"pids": {"limit": 100}}),
])
def test_limits(kw: dict[str, Any], resources: dict[str, Any]) -> None:
    got = oci_config(request(**kw), ROOT)["linux"]["resources"]
    got.pop("devices")
    assert got == resources


def test_no_swap_accounting_means_no_swap_limit() -> None:
    got = oci_config(request(memory_limit=1 << 30), ROOT, HostFacts(swap_accounting=False))
    assert got["linux"]["resources"]["memory"] == {"limit": 1 << 30}


def test_cgroups_path_hostname_rlimits_root() -> None:
    config = oci_config(request(hostname="web", read_only=True, labels={"a": "b"}), ROOT)
    assert config["linux"]["cgroupsPath"] == "/skiff/node1/web-1"
    assert config["hostname"] == "web"
    assert config["root"] == {"path": "/r/web-1", "readonly": True}
    assert config["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}]
    assert config["annotations"] == {"a": "b"}
    low = oci_config(request(), ROOT, HostFacts(nofile_limit=20000))
    assert low["process"]["rlimits"][0]["hard"] == 20000


def test_env_gets_path_hostname_home() -> None:
    env = oci_config(request(env={"A": "1"}, hostname="h"), ROOT)["process"]["env"]
    assert env[0] == "A=1"
    assert "HOSTNAME=h" in env and "HOME=/root" in env
    assert any(e.startswith("PATH=/usr/local/sbin:") for e in env)
    own = oci_config(request(env={"PATH": "/x"}), ROOT)["process"]["env"]
    assert [e for e in own if e.startswith("PATH=")] == ["PATH=/x"]


def test_mounts() -> None:
    config = oci_config(request(
        mounts=[MountRequest("bind", "/data/sub", "/srv/sub"),
                MountRequest("bind", "/data", "/srv/data", read_only=True),
                MountRequest("tmpfs", "/dev/shm", size=1 << 20, mode=0o1777)],
        hosts_file=Path("/s/hosts"), resolv_file=Path("/s/resolv.conf")), ROOT)
    mounts = config["mounts"]
    dests = [m["destination"] for m in mounts]
    assert dests.count("/dev/shm") == 1  # the user's tmpfs replaces the default one
    assert dests.index("/data") < dests.index("/data/sub")
    by = {m["destination"]: m for m in mounts}
    assert by["/data"]["options"] == ["rbind", "rprivate", "ro"]
    assert by["/data/sub"]["options"][-1] == "rw"
    assert by["/dev/shm"]["options"] == ["nosuid", "nodev", "size=1048576", "mode=1777", "rw"]
    assert by["/etc/hosts"] == {"destination": "/etc/hosts", "type": "bind",
                                "source": "/s/hosts", "options": ["rbind", "rprivate", "ro"]}
    assert by["/etc/resolv.conf"]["source"] == "/s/resolv.conf"


def test_init_wraps_the_command() -> None:
    config = oci_config(request(init=True, args=["app", "-v"]), ROOT,
                        HostFacts(init_binary="/usr/bin/tini-static"))
    assert config["process"]["args"] == [INIT_PATH, "--", "app", "-v"]
    init = {m["destination"]: m for m in config["mounts"]}[INIT_PATH]
    assert init["source"] == "/usr/bin/tini-static" and "ro" in init["options"]
    with pytest.raises(RequestError, match="init"):
        oci_config(request(init=True), ROOT, HostFacts())


@pytest.mark.parametrize(("kw", "message"), [
    ({"id": "-bad"}, "invalid container id"),
    ({"id": "a" * 65}, "invalid container id"),
    ({"id": "a/b"}, "invalid container id"),
    ({"args": []}, "no command"),
    ({"cwd": "rel"}, "not absolute"),
    ({"memory_limit": 0}, "memory limit"),
    ({"cpus": -1.0}, "cpus"),
    ({"stop_signal": "SIGNOPE"}, "unknown signal"),
])
def test_bad_requests(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(RequestError, match=message):
        request(**kw)


@pytest.mark.parametrize("parent", ["", "/abs", "a/../b", "a b", "a//b"])
def test_bad_cgroup_parent(parent: str) -> None:
    with pytest.raises(RequestError, match="cgroup parent"):
        ContainerRequest(id="x", bundle_dir=Path("/b"), rootfs=Path("/r"), args=["x"],
                         cgroup_parent=parent)


@pytest.mark.parametrize(("mount", "message"), [
    ({"type": "nfs", "target": "/x"}, "unknown type"),
    ({"type": "tmpfs", "target": "x"}, "absolute"),
    ({"type": "bind", "target": "/x", "source": "rel"}, "absolute host path"),
])
def test_bad_mounts(mount: dict[str, Any], message: str) -> None:
    with pytest.raises(RequestError, match=message):
        MountRequest(**mount)
