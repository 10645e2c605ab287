"""Fixtures for the network integration tests (see helpers.py for the lab)."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.integration.network.helpers import Lab, is_root, netns_names
from tests.integration.network.overlay_lab import OverlayLab


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Lab]:
    lab = Lab(tmp_path)
    try:
        yield lab
    finally:
        await lab.cleanup()
        left = await lab.leftovers()
        assert not left, f"left behind: {left}"


def _all_leftovers() -> list[str]:
    def run(*cmd: str) -> str:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    found = netns_names("sktest")
    found += [ln for ln in run("ip", "-o", "link", "show").splitlines() if ": sktest" in ln]
    found += [ln for ln in run("nft", "list", "tables").splitlines() if "skiff_test" in ln]
    return found


@pytest.fixture(scope="session", autouse=True)
def no_network_leftovers() -> Iterator[None]:
    """After the whole directory: no sktest* links or namespaces, no skiff_test* tables."""
    yield
    if is_root():
        left = _all_leftovers()
        assert not left, f"network tests left behind: {left}"


@pytest.fixture
async def overlay_lab(tmp_path: Path) -> AsyncIterator[OverlayLab]:
    """Nodes on an underlay switch for the VXLAN tests; everything removed afterwards, and
    proven gone."""
    lab = OverlayLab(tmp_path)
    try:
        yield lab
    finally:
        await lab.cleanup()
        left = await lab.leftovers()
        assert not left, f"left behind: {left}"
