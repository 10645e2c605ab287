"""The routing mesh's nft script (agent/network/mesh_rules.py): text, checks, order, and
that the real nft accepts it (check mode: nothing is changed); and the publications the
agent derives from Endpoints (agent/network/mesh_endpoints.py)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess

import pytest

from agent.network.errors import NetworkError
from agent.network.mesh_endpoints import publications
from agent.network.mesh_rules import (
    MESH_MARK,
    Publication,
    check_mark,
    check_table,
    drop_ruleset,
    mesh_ruleset,
    publications_summary,
)
from skiff.models.appspec import PortMapping
from skiff.models.objects import EndpointAddress, Endpoints, ObjectMeta


def pub(service: str = "app/web", target: int = 80, published: int | None = 8080,
        backends: tuple[str, ...] = ("10.55.0.2",), **kw: object) -> Publication:
    return Publication(service, PortMapping(target, published, **kw),  # type: ignore[arg-type]
                       backends)


def mesh_lines(script: str, chain: str) -> list[str]:
    """The rule lines of one chain (type/policy line excluded)."""
    lines = script.splitlines()
    start = lines.index(f"\tchain {chain} {{")
    out = []
    for line in lines[start + 1:]:
        if line == "\t}":
            return out
        if not line.strip().startswith("type "):
            out.append(line.strip())
    raise AssertionError(f"chain {chain} not closed")


def test_round_robin_dnat_with_mark_and_masquerade():
    rules = mesh_ruleset("t5mesh", [pub(backends=("10.55.0.4", "10.55.0.2", "10.55.0.3"))])
    assert rules.skipped == []
    assert mesh_lines(rules.script, "mesh") == [
        "tcp dport 8080 ct mark set ct mark | 0x00100000 dnat to numgen inc mod 3 map "
        '{ 0 : 10.55.0.2, 1 : 10.55.0.3, 2 : 10.55.0.4 } : 80 comment "app/web"']
    assert mesh_lines(rules.script, "postrouting") == [
        "ct status dnat ct mark & 0x00100000 == 0x00100000 masquerade"]
    # Only traffic to the node's own (non-loopback) addresses, from outside and from itself.
    local = "fib daddr type local ip daddr != 127.0.0.0/8 jump mesh"
    assert mesh_lines(rules.script, "prerouting") == [local]
    assert mesh_lines(rules.script, "output") == [local]
    assert "priority dstnat" in rules.script and "hook output priority -100" in rules.script
    assert mesh_lines(rules.script, "input") == []


def test_atomic_replace_header():
    script = mesh_ruleset("t5mesh", []).script
    assert script.startswith("table ip t5mesh {}\ndelete table ip t5mesh\ntable ip t5mesh {\n")
    assert script.endswith("}\n")
    assert drop_ruleset("t5mesh") == "table ip t5mesh {}\ndelete table ip t5mesh\n"


def test_backend_order_and_duplicates_do_not_change_the_text():
    a = mesh_ruleset("t", [pub(backends=("10.0.0.10", "10.0.0.9", "10.0.0.9"))]).script
    b = mesh_ruleset("t", [pub(backends=("10.0.0.9", "10.0.0.10"))]).script
    assert a == b
    # Numeric order, not string order.
    assert "{ 0 : 10.0.0.9, 1 : 10.0.0.10 }" in a


def test_publication_order_does_not_change_the_text():
    pubs = [pub("a/x", published=81), pub("a/y", published=82, protocol="udp"),
            pub("a/z", published=83, host_ip="192.168.1.5")]
    assert mesh_ruleset("t", pubs).script == mesh_ruleset("t", pubs[::-1]).script


def test_udp_and_host_ip():
    rules = mesh_ruleset("t", [
        pub("app/dns", 53, 5353, ("10.1.0.2",), protocol="udp", host_ip="192.168.55.1"),
        pub("app/web", 80, 8080, ("10.1.0.3",), host_ip="0.0.0.0")])
    assert mesh_lines(rules.script, "mesh") == [
        "ip daddr 192.168.55.1 udp dport 5353 ct mark set ct mark | 0x00100000 dnat to "
        'numgen inc mod 1 map { 0 : 10.1.0.2 } : 53 comment "app/dns"',
        # 0.0.0.0 is compose's "every address": no daddr match
        "tcp dport 8080 ct mark set ct mark | 0x00100000 dnat to numgen inc mod 1 map "
        '{ 0 : 10.1.0.3 } : 80 comment "app/web"']


def test_specific_host_ip_comes_before_the_catch_all_on_the_same_port():
    rules = mesh_ruleset("t", [pub("a/all", published=8080),
                               pub("a/one", published=8080, host_ip="10.9.9.9")])
    assert rules.skipped == []
    lines = mesh_lines(rules.script, "mesh")
    assert lines[0].startswith("ip daddr 10.9.9.9 tcp dport 8080") and "a/one" in lines[0]
    assert lines[1].startswith("tcp dport 8080") and "a/all" in lines[1]


def test_no_backend_rejects_instead_of_hanging():
    rules = mesh_ruleset("t", [pub("a/t", published=9090, backends=()),
                               pub("a/u", published=9090, backends=(), protocol="udp",
                                   host_ip="192.168.0.1")])
    assert mesh_lines(rules.script, "mesh") == []
    assert mesh_lines(rules.script, "input") == [
        "ip daddr != 127.0.0.0/8 ip daddr 192.168.0.1 udp dport 9090 ct state new "
        'reject with icmp type port-unreachable comment "a/u: no ready replica"',
        "ip daddr != 127.0.0.0/8 tcp dport 9090 ct state new reject with tcp reset "
        'comment "a/t: no ready replica"']
    assert "9090/tcp->a/t:80 (reject)" in publications_summary(rules.rules)


def test_one_port_one_service_first_by_name_wins():
    rules = mesh_ruleset("t", [pub("b/web", backends=("10.0.0.3",)),
                               pub("a/web", backends=("10.0.0.2",))])
    assert [r.service for r in rules.rules] == ["a/web"]
    assert rules.skipped == [("b/web", "tcp/8080 is already published by a/web")]
    # Same port, other protocol or other address: no conflict.
    rules = mesh_ruleset("t", [pub("a/web"), pub("b/web", protocol="udp"),
                               pub("c/web", host_ip="10.1.1.1")])
    assert rules.skipped == [] and len(rules.rules) == 3


@pytest.mark.parametrize(("publication", "why"), [
    (pub(published=None), "no published port"),
    (pub(published=0), "not a port"),
    (pub(published=65536), "not a port"),
    (pub(target=0), "not a port"),
    (pub(published=True), "not a port"),  # type: ignore[arg-type]
    (pub(protocol="sctp"), "protocol"),
    (pub(protocol='tcp dport 1 accept; "'), "protocol"),
    (pub(host_ip="::1"), "not an IPv4 address"),
    (pub(host_ip="127.0.0.1"), "loopback"),
    (pub(host_ip="10.0.0.1 tcp dport 22 accept"), "not an IPv4 address"),
    (pub(host_ip="224.0.0.1"), "unicast"),
    (pub('app/web" accept comment "x'), "app/service"),
    (pub("app/web\nflush ruleset"), "app/service"),
    (pub("web"), "app/service"),
    (pub("app/web\n"), "app/service"),
    (pub("a/" + "b" * 200), "app/service"),
])
def test_bad_publications_are_skipped_not_interpolated(publication: Publication, why: str):
    rules = mesh_ruleset("t", [publication, pub("ok/svc", published=1234)])
    assert len(rules.skipped) == 1 and why in rules.skipped[0][1]
    assert [r.service for r in rules.rules] == ["ok/svc"]
    assert mesh_lines(rules.script, "mesh")[0].startswith("tcp dport 1234 ")
    assert len(mesh_lines(rules.script, "mesh")) == 1


def test_bad_backends_are_dropped_the_rest_published():
    bad = ["10.0.0.1; flush ruleset", "0.0.0.0", "127.0.0.1", "255.255.255.255",
           "224.0.0.5", "240.0.0.1", "fe80::1", "", "10.0.0.256"]
    rules = mesh_ruleset("t", [pub(backends=("10.0.0.7", *bad))])
    assert len(rules.skipped) == len(bad)
    assert all(s == "app/web" for s, _ in rules.skipped)
    assert "map { 0 : 10.0.0.7 } : 80" in rules.script
    # Nothing but bad backends: the port rejects.
    rules = mesh_ruleset("t", [pub(backends=tuple(bad))])
    assert mesh_lines(rules.script, "mesh") == []
    assert len(mesh_lines(rules.script, "input")) == 1


@pytest.mark.parametrize("table", ["", "1abc", "a b", "a;b", "a}", "x" * 65, "ip\n"])
def test_bad_table_names_raise(table: str):
    with pytest.raises(NetworkError):
        mesh_ruleset(table, [])
    with pytest.raises(NetworkError):
        check_table(table)


@pytest.mark.parametrize("mark", [0, 3, -1, 1 << 32, 0x30, True, "16"])
def test_mark_must_be_one_bit(mark: object):
    with pytest.raises(NetworkError):
        check_mark(mark)  # type: ignore[arg-type]


def test_another_mark():
    script = mesh_ruleset("t", [pub()], mark=0x4).script
    assert "ct mark set ct mark | 0x00000004 dnat" in script
    assert "ct mark & 0x00000004 == 0x00000004 masquerade" in script
    assert MESH_MARK == 0x00100000


needs_nft = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None,
                               reason="nft -c needs root and nft")


@needs_nft
def test_real_nft_accepts_the_script():
    """`nft -c` checks syntax and asks the kernel to validate the transaction (hooks,
    expressions such as fib in output) without committing it."""
    table = "t5chk" + secrets.token_hex(4)
    pubs = [pub("a/web", backends=tuple(f"10.55.0.{i}" for i in range(2, 40))),
            pub("a/dns", 53, 5353, ("10.55.0.2", "10.56.1.9"), protocol="udp"),
            pub("a/one", 80, 8081, ("10.55.0.3",), host_ip="192.168.55.1"),
            pub("a/none", 80, 9090, ()),
            pub("a/noneu", 80, 9090, (), protocol="udp", host_ip="192.168.55.1")]
    for script in (mesh_ruleset(table, pubs).script, mesh_ruleset(table, []).script,
                   drop_ruleset(table)):
        proc = subprocess.run(["nft", "-c", "-f", "-"], input=script, capture_output=True,
                              text=True, timeout=30, check=False)
        assert proc.returncode == 0, proc.stderr
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                            check=True).stdout
    assert table not in tables


# ---- from Endpoints (agent/network/mesh_endpoints.py) -----------------------------------


def endpoints(name: str, ports: list[PortMapping], networks: list[str],
              *addrs: tuple[str, bool, dict[str, str]]) -> Endpoints:
    return Endpoints(
        metadata=ObjectMeta(name=name, app="app"),
        names={n: [name] for n in networks}, ports=ports,
        addresses=[EndpointAddress(task=f"{name}.{i}", node=node, vtep="192.0.2.1",
                                   hostname=f"h{i}", ready=ready, addresses=ips)
                   for i, (node, ready, ips) in enumerate(addrs, 1)])


def test_ingress_uses_ready_replicas_everywhere_on_the_first_non_internal_network():
    ep = endpoints("web", [PortMapping(80, 8080)], ["app_a", "app_b", "app_c"],
                   ("n1", True, {"app_a": "10.1.0.2", "app_b": "10.2.0.2"}),
                   ("n2", True, {"app_a": "10.1.0.3", "app_b": "10.2.0.3"}),
                   ("n2", False, {"app_a": "10.1.0.4", "app_b": "10.2.0.4"}))
    pubs, skipped = publications([ep], "n1", {"app_a": True, "app_b": False,
                                              "app_c": False})
    assert skipped == []
    assert pubs == [Publication("app/web", PortMapping(80, 8080), ["10.2.0.2", "10.2.0.3"])]


def test_host_mode_only_where_a_replica_runs_and_only_local_replicas():
    port = PortMapping(80, 8080, mode="host")
    ep = endpoints("web", [port], ["app_a"], ("n1", True, {"app_a": "10.1.0.2"}),
                   ("n2", True, {"app_a": "10.1.0.3"}), ("n3", False, {"app_a": "10.1.0.4"}))
    nets = {"app_a": False}
    assert publications([ep], "n1", nets)[0] == [Publication("app/web", port, ["10.1.0.2"])]
    assert publications([ep], "n4", nets)[0] == []  # the port stays free there
    # A replica here that does not run yet: the port refuses meanwhile.
    assert publications([ep], "n3", nets)[0] == [Publication("app/web", port, [])]


def test_services_without_a_usable_network_are_reported():
    port = [PortMapping(80, 8080)]
    only_internal = endpoints("db", port, ["app_i"], ("n1", True, {"app_i": "10.1.0.2"}))
    unknown = endpoints("web", port, ["app_new"], ("n1", True, {"app_new": "10.1.0.3"}))
    unpublished = endpoints("worker", [], ["app_i"])
    pubs, skipped = publications([only_internal, unknown, unpublished], "n1",
                                 {"app_i": True})
    assert pubs == []
    assert skipped == [("app/db", "no non-internal network to publish from"),
                       ("app/web", "network app_new is not known yet")]
