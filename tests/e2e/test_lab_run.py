"""The seed's one-container commands on the lab: `skiff run -d -p`, `ps`, `stop`, `rm`
behave as docker's do (each container a one-replica app)."""

from __future__ import annotations

import urllib.request

import pytest

from tests.e2e.conftest import Lab, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except OSError:
        return None


def _ps(lab: Lab, *flags: str) -> dict[str, list[str]]:
    lines = lab.skiff("ps", *flags).stdout.splitlines()
    header = lines[0]
    starts = [header.index(col) for col in ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED",
                                            "STATUS", "PORTS", "NAMES", "NODE")]
    rows = {}
    for line in lines[1:]:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows[cells[6]] = cells
    return rows


def test_run_ps_stop_rm_like_docker(lab: Lab) -> None:
    try:
        out = lab.skiff("run", "-d", "-p", "3300:80", "--name", "web", "-e", "GREETING=hi",
                        "busybox", "sh", "-c",
                        "echo $GREETING > /tmp/index.html && httpd -f -p 80 -h /tmp").stdout
        assert out == "web\n"
        page = wait_for(lambda: _get(f"http://{lab.node_address(2)}:3300/index.html"),
                        "the published port")
        assert page == "hi\n"
        once = lab.skiff("run", "-d", "--name", "once", "busybox", "sh", "-c",
                         "echo bye; exit 3").stdout
        assert once == "once\n"

        running = _ps(lab)
        assert set(running) == {"web"}
        assert running["web"][1] == "busybox" and running["web"][4].startswith("Up")
        assert running["web"][5] == "3300->80/tcp"
        every = wait_for(lambda: (rows := _ps(lab, "-a")) and
                         rows.get("once", [""] * 8)[4].startswith("Exited (3)") and rows,
                         "once to show as exited")
        assert set(every) == {"web", "once"}
        assert lab.skiff("logs", "once/once").stdout == "bye\n"

        refused = lab.skiff("rm", "web", check=False)
        assert refused.returncode == 1 and "it is running" in refused.stderr
        assert lab.skiff("stop", "web").stdout == "web\n"
        assert "web" not in _ps(lab)
        assert _ps(lab, "-a")["web"][4] == "Exited (stopped)"
        assert _get(f"http://{lab.node_address(1)}:3300/index.html") is None

        assert lab.skiff("rm", "web", "once").stdout == "web\nonce\n"
        assert _ps(lab, "-a") == {}
        gone = lab.skiff("rm", "web", check=False)
        assert gone.returncode == 1 and "no such container: web" in gone.stderr
    finally:
        lab.skiff("rm", "-f", "web", "once", check=False)
