"""Pre-filter: compose's depends_on. A task is placed only once every service it depends
on meets its condition, wherever that service's tasks run:

- service_started: one of its tasks is running;
- service_healthy: one of its tasks is running and healthy (or running with no health
  check at all, neither in the service nor in its image);
- service_completed_successfully: one of its tasks completed with exit code 0.

Until then the task stays pending, saying what it waits for. The scheduler looks again
whenever a task starts running or ends (controller/scheduler/loop.py)."""

from __future__ import annotations

from controller.scheduler.framework import FITS, Status, unschedulable
from controller.scheduler.state import SchedulingState
from skiff.models.objects import Task

NAME = "dependencies"


def met(condition: str, tasks: list[tuple[str, int | None, str | None]]) -> bool:
    if condition == "service_completed_successfully":
        return any(state == "complete" and code == 0 for state, code, _ in tasks)
    if condition == "service_healthy":
        return any(state == "running" and health in ("healthy", None)
                   for state, _, health in tasks)
    return any(state == "running" for state, _, _ in tasks)


def waiting_for(task: Task, state: SchedulingState) -> str | None:
    app = task.metadata.app or ""
    for dep, condition in sorted(task.spec.container.depends_on.items()):
        if not met(condition, state.service_tasks.get((app, dep), [])):
            return f"waiting for service {dep} ({condition.removeprefix('service_')})"
    return None


class Dependencies:
    name = NAME

    def prefilter(self, task: Task, state: SchedulingState) -> Status:
        reason = waiting_for(task, state)
        return unschedulable(reason) if reason else FITS
