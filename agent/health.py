"""Health checks, the pure part: which check a container runs (the service's
`healthcheck`, over the image's HEALTHCHECK, as Docker merges them), and what a run of
probe results means (Docker's rules).

- No check (neither says one, or the test is NONE / `disable: true`): no health at all.
- `starting` until the first passing probe; a failing probe inside `start_period` does
  not count; `retries` failures in a row make it `unhealthy`; one pass makes it
  `healthy` again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from skiff.manifest.units import parse_duration
from skiff.models.appspec import Healthcheck

Health = Literal["starting", "healthy", "unhealthy"]
DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
_NS = 1e9


@dataclass(frozen=True)
class HealthConfig:
    argv: tuple[str, ...]  # what to exec in the container
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    start_period: float = 0.0


def _argv(test: list[str]) -> tuple[str, ...] | None:
    """Docker's forms: ["CMD", argv...], ["CMD-SHELL", "cmd"], ["NONE"]."""
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return tuple(test[1:]) or None
    if test[0] == "CMD-SHELL":
        return ("/bin/sh", "-c", " ".join(test[1:])) if test[1:] else None
    return ("/bin/sh", "-c", " ".join(test))


def _seconds(value: Any, default: float) -> float:
    return parse_duration(value) if value else default


def effective(spec: Healthcheck | None, image: Mapping[str, Any] | None
              ) -> HealthConfig | None:
    """The check a container runs, or None. Fields the service leaves out come from the
    image's HEALTHCHECK (times there are in nanoseconds), then Docker's defaults."""
    if spec is not None and spec.disable:
        return None
    image = image or {}
    test = spec.test if spec is not None and spec.test is not None else \
        [str(x) for x in image.get("Test") or []]
    argv = _argv(test)
    if argv is None:
        return None

    def img(key: str, default: float) -> float:
        value = image.get(key)
        return value / _NS if isinstance(value, int | float) and value > 0 else default

    return HealthConfig(
        argv=argv,
        interval=_seconds(spec.interval if spec else None, img("Interval", DEFAULT_INTERVAL)),
        timeout=_seconds(spec.timeout if spec else None, img("Timeout", DEFAULT_TIMEOUT)),
        retries=(spec.retries if spec and spec.retries is not None else
                 int(image.get("Retries") or DEFAULT_RETRIES)),
        start_period=_seconds(spec.start_period if spec else None,
                              img("StartPeriod", 0.0)))


@dataclass
class HealthTracker:
    config: HealthConfig
    started: float  # when the container started (monotonic seconds)
    status: Health = "starting"
    failures: int = 0

    def observe(self, passed: bool, now: float) -> Health:
        """The status after one probe's result."""
        if passed:
            self.failures = 0
            self.status = "healthy"
        elif now - self.started < self.config.start_period and self.status == "starting":
            pass  # still warming up: does not count
        else:
            self.failures += 1
            if self.failures >= self.config.retries:
                self.status = "unhealthy"
        return self.status
