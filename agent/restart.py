"""Restart policies and back-off, as pure decisions.

A replica that exits is restarted per its service's policy: ``no`` never, ``always``
and ``unless-stopped`` always, ``on-failure[:N]`` on a non-zero exit up to N times.
An unset policy means ``always``: skiff is an orchestrator, and Swarm's default
(condition ``any``) keeps replicas running. The delay doubles from 0.5 s up to 30 s,
and starts over once a container has run for 10 s.
"""

from __future__ import annotations

from dataclasses import dataclass

from skiff.models.appspec import ServiceSpec

FIRST_DELAY = 0.5
MAX_DELAY = 30.0
RESET_AFTER = 10.0


@dataclass(frozen=True)
class Decision:
    restart: bool
    delay: float = 0.0
    reason: str = ""


def decide(spec: ServiceSpec, exit_code: int, restarts: int, quick_failures: int
           ) -> Decision:
    """``restarts``: restarts so far; ``quick_failures``: exits in a row, each within
    RESET_AFTER seconds of its start (they drive the back-off)."""
    policy = spec.restart or "always"
    if policy == "no":
        return Decision(False, reason="restart policy is no")
    if policy == "on-failure":
        if exit_code == 0:
            return Decision(False, reason="exited 0 and the policy is on-failure")
        limit = spec.restart_max_retries
        if limit is not None and restarts >= limit:
            return Decision(False, reason=f"gave up after {restarts} restarts "
                                          f"(on-failure:{limit})")
    delay = min(FIRST_DELAY * (2 ** max(0, quick_failures - 1)), MAX_DELAY) \
        if quick_failures else 0.0
    return Decision(True, delay)
