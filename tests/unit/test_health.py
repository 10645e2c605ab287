"""Health checks, the pure part: the check a container runs (service over image) and
what a run of probe results means (Docker's rules)."""

from __future__ import annotations

import pytest

from agent.health import HealthConfig, HealthTracker, effective
from skiff.manifest import ManifestError, load_text
from skiff.models.appspec import Healthcheck

IMAGE = {"Test": ["CMD-SHELL", "wget -q localhost"], "Interval": 5_000_000_000,
         "Timeout": 2_000_000_000, "Retries": 5, "StartPeriod": 0}


def test_the_service_check_overrides_the_image_field_by_field() -> None:
    assert effective(None, None) is None
    assert effective(None, IMAGE) == HealthConfig(("/bin/sh", "-c", "wget -q localhost"),
                                                  interval=5.0, timeout=2.0, retries=5)
    mine = Healthcheck(test=["CMD", "true"], interval="1s")
    assert effective(mine, IMAGE) == HealthConfig(("true",), interval=1.0, timeout=2.0,
                                                  retries=5)
    assert effective(Healthcheck(retries=2), IMAGE).retries == 2  # type: ignore[union-attr]
    assert effective(Healthcheck(disable=True), IMAGE) is None
    assert effective(Healthcheck(test=["NONE"]), IMAGE) is None
    assert effective(Healthcheck(test=["CMD-SHELL", "test -e /ok"]), None) == \
        HealthConfig(("/bin/sh", "-c", "test -e /ok"))  # Docker's defaults


def test_starting_healthy_unhealthy_and_back() -> None:
    t = HealthTracker(HealthConfig(("true",), interval=1, retries=3, start_period=10),
                      started=0.0)
    assert t.observe(False, 2.0) == "starting"  # in the start period: not counted
    assert t.observe(False, 9.0) == "starting" and t.failures == 0
    assert t.observe(False, 11.0) == "starting" and t.failures == 1
    assert t.observe(True, 12.0) == "healthy" and t.failures == 0
    assert t.observe(False, 13.0) == "healthy"
    assert t.observe(False, 14.0) == "healthy"
    assert t.observe(False, 15.0) == "unhealthy"
    assert t.observe(True, 16.0) == "healthy"


def test_a_failure_after_healthy_counts_even_in_the_start_period() -> None:
    t = HealthTracker(HealthConfig(("true",), retries=1, start_period=60), started=0.0)
    assert t.observe(True, 1.0) == "healthy"
    assert t.observe(False, 2.0) == "unhealthy"


def test_compose_healthcheck_forms_and_mistakes() -> None:
    def hc(body: str) -> Healthcheck | None:
        text = f"name: x\nservices:\n  web:\n    image: busybox\n    healthcheck:\n{body}"
        return load_text(text, "c.yml", None, environ={}).app.services["web"].healthcheck

    assert hc("      test: curl -f localhost\n") == Healthcheck(
        test=["CMD-SHELL", "curl -f localhost"])
    assert hc("      test: [CMD, curl, -f, localhost]\n      interval: 90s\n"
              "      retries: 2\n") == Healthcheck(test=["CMD", "curl", "-f", "localhost"],
                                                   interval="1m30s", retries=2)
    assert hc("      disable: true\n") == Healthcheck(disable=True)
    for body, where in (("      test: [curl, localhost]\n", "services.web.healthcheck.test"),
                        ("      test: [CMD]\n", "services.web.healthcheck.test"),
                        ("      interval: soon\n", "services.web.healthcheck.interval"),
                        ("      retries: 0\n", "services.web.healthcheck.retries")):
        with pytest.raises(ManifestError) as info:
            hc(body)
        assert info.value.problems[0].path == where
