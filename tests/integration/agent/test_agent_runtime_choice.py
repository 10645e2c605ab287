"""An agent told to use an OCI runtime that does not work here refuses to start."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.cli import skiff

pytestmark = pytest.mark.integration


async def test_unusable_runtime_is_refused(tmp_path: Path) -> None:
    res = await skiff("agent", "--server", "http://127.0.0.1:9", "--token", "t",
                      "--name", "n", "--state-dir", str(tmp_path / "agent"),
                      "--runtime", "no-such-runtime", timeout=30)
    assert res.code != 0
    assert "OCI runtime 'no-such-runtime' cannot run" in res.err
