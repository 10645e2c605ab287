"""Fixtures for the node DNS server tests: a lab of namespaces (see lab.py), the server
listening in its node namespace, and a fake upstream resolver.

The lab fixture proves its own clean-up: no namespace of its token is left, which also
means no link (they all live in those namespaces)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from agent.dns import DnsServer, NameTable
from tests.integration.dns.fake_upstream import FakeUpstream
from tests.integration.dns.lab import (
    BACK_GW,
    FRONT_GW,
    UPSTREAM_IP,
    DnsLab,
)
from tests.integration.dns.names import lab_endpoints

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for netns and links")


@pytest.fixture
def lab() -> Iterator[DnsLab]:
    lab = DnsLab()
    try:
        yield lab.up()
    finally:
        lab.close()
        assert not lab.leftovers(), f"left behind: {lab.leftovers()}"


@pytest.fixture
async def upstream(lab: DnsLab) -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream(lab.upstream, UPSTREAM_IP, {"example.test": ["192.0.2.7"]})
    try:
        yield await fake.start()
    finally:
        await fake.close()


@pytest.fixture
async def server(lab: DnsLab) -> AsyncIterator[DnsServer]:
    srv = DnsServer(NameTable.from_endpoints(lab_endpoints()), netns=lab.node,
                    upstreams=[UPSTREAM_IP], upstream_timeout=0.5)
    try:
        await srv.set_addresses([FRONT_GW, BACK_GW])
        yield srv
    finally:
        await srv.close()
