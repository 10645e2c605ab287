"""skiff logs and skiff exec: what happens inside a service's containers."""

from __future__ import annotations

import argparse
import asyncio
import sys

from skiff.cli.context import CliError, client
from skiff.client.api import ApiClient
from skiff.models.kinds import SERVICE, TASK


def _split(target: str) -> tuple[str, str]:
    app, sep, rest = target.partition("/")
    if not sep or not app or not rest:
        raise CliError(f"name a service or task as APP/SERVICE or APP/TASK, got {target!r}")
    return app, rest


async def _tasks_of(api: ApiClient, app: str, name: str) -> list[str]:
    """A task name as given, or every task of a service (the running ones first)."""
    tasks = (await api.list(TASK, app=app))["items"]
    names = {t["metadata"]["name"] for t in tasks}
    if name in names:
        return [name]
    of_service = sorted(t["metadata"]["name"] for t in tasks if t["spec"]["service"] == name)
    if of_service:
        return of_service
    try:
        await api.get(SERVICE, name, app)
    except Exception:
        raise CliError(f"no service or task {app}/{name}") from None
    raise CliError(f"service {app}/{name} has no tasks yet")


async def cmd_logs(args: argparse.Namespace) -> int:
    app, name = _split(args.target)
    async with client(args) as api:
        tasks = await _tasks_of(api, app, name)
        prefix = len(tasks) > 1 and not args.no_prefix
        width = max(len(t) for t in tasks)

        async def one(task: str) -> None:
            async for line in api.task_logs(app, task, tail=args.tail, follow=args.follow,
                                            timestamps=args.timestamps):
                text = line.decode(errors="replace")
                sys.stdout.write(f"{task:<{width}} | {text}" if prefix else text)
                sys.stdout.flush()

        await asyncio.gather(*(one(t) for t in tasks))
    return 0


async def cmd_exec(args: argparse.Namespace) -> int:
    app, name = _split(args.target)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        raise CliError("what to run? skiff exec APP/TASK -- CMD [ARG...]")
    async with client(args) as api:
        task = (await _tasks_of(api, app, name))[0]
        result = await api.task_exec(app, task, cmd, timeout=args.timeout)
    sys.stdout.write(result["stdout"])
    sys.stderr.write(result["stderr"])
    return int(result["exitCode"])
