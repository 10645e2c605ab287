"""A container's /etc/hosts and /etc/resolv.conf, as pure text."""

from __future__ import annotations

from ipaddress import IPv4Interface

import pytest

from agent.network.files import host_resolv_conf, hosts_file, resolv_conf


def test_hosts_has_localhost_own_name_and_extras_in_order():
    text = hosts_file("web-1", IPv4Interface("10.88.0.7/24"),
                      [("db", "10.88.0.9"), ("cache", "10.88.0.3")])
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert "::1\tlocalhost ip6-localhost ip6-loopback" in lines
    assert lines[-3:] == ["10.88.0.7\tweb-1", "10.88.0.9\tdb", "10.88.0.3\tcache"]
    assert text.endswith("\n")


def test_hosts_accepts_plain_address():
    assert hosts_file("a", "10.0.0.2").splitlines()[-1] == "10.0.0.2\ta"


@pytest.mark.parametrize("name", ["", "a b", "a\nb", "-lead", "x" * 300])
def test_hosts_refuses_bad_names(name):
    with pytest.raises(ValueError):
        hosts_file(name, "10.0.0.2")


def test_hosts_refuses_bad_extra_address():
    with pytest.raises(ValueError):
        hosts_file("a", "10.0.0.2", [("b", "not-an-ip")])


def test_resolv_keeps_reachable_servers_and_search_options():
    host = ("# comment\nnameserver 10.255.255.53\nnameserver 192.0.2.1\n"
            "search corp.example\noptions edns0 trust-ad\n")
    out = resolv_conf(host)
    assert "nameserver 10.255.255.53\nnameserver 192.0.2.1\n" in out
    assert "search corp.example\n" in out and "options edns0 trust-ad\n" in out
    assert "# comment" not in out


def test_resolv_drops_loopback_and_ipv6():
    out = resolv_conf("nameserver 127.0.0.53\nnameserver ::1\nnameserver fd00::1\n"
                      "nameserver 10.1.1.1\n")
    assert [ln for ln in out.splitlines() if ln.startswith("nameserver")] == [
        "nameserver 10.1.1.1"]


def test_resolv_stub_resolver_falls_back_to_upstream():
    stub = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n"
    upstream = "nameserver 192.168.1.1\nnameserver 127.0.0.1\nsearch lan\n"
    out = resolv_conf(stub, upstream)
    assert [ln for ln in out.splitlines() if ln.startswith("nameserver")] == [
        "nameserver 192.168.1.1"]
    assert "search lan" in out and "systemd-resolved" in out


def test_resolv_without_reachable_server_says_why_and_invents_none():
    out = resolv_conf("nameserver 127.0.0.53\n", None)
    assert "nameserver" not in out.replace("# no nameserver", "")
    assert "# no nameserver" in out
    assert "nameserver" not in resolv_conf("", "nameserver 127.0.0.1\n").replace(
        "# no nameserver", "")


def test_host_resolv_conf_reads_files(tmp_path):
    host = tmp_path / "resolv.conf"
    upstream = tmp_path / "upstream.conf"
    host.write_text("nameserver 127.0.0.53\n")
    assert "# no nameserver" in host_resolv_conf(host, upstream)  # upstream missing
    upstream.write_text("nameserver 10.0.0.53\n")
    assert "nameserver 10.0.0.53\n" in host_resolv_conf(host, upstream)
    assert "# no nameserver" in host_resolv_conf(tmp_path / "absent", tmp_path / "absent2")
