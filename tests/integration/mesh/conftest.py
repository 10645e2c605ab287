"""Fixtures for the routing-mesh tests: a lab (node, client, 3 backends) and its mesh.

The lab fixture proves its own clean-up (no namespace of its token left, which also
means no link or nft table: they all live in those namespaces)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from agent.network.mesh import RoutingMesh
from tests.integration.mesh.lab import MeshLab


@pytest.fixture
def lab() -> Iterator[MeshLab]:
    lab = MeshLab(backends_wanted=3)
    try:
        yield lab.up()
    finally:
        lab.close()
        assert not lab.leftovers(), f"left behind: {lab.leftovers()}"


@pytest.fixture
async def mesh(lab: MeshLab) -> AsyncIterator[RoutingMesh]:
    mesh = RoutingMesh(lab.table, lab.node)
    try:
        yield mesh
    finally:
        await mesh.remove()
