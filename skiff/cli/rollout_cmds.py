"""skiff rollout status|history|undo|pause|resume APP/SERVICE: a service's rollouts, as
kubectl's.

status blocks until the latest spec runs on every replica (and is healthy where there is
a check): exit 0; or until the rollout is paused by failing replicas: exit 1, naming
them. undo puts an earlier revision's spec back into the app (the same edit an apply
makes), so the reconcilers roll it out like any change; the next apply of the app's file
replaces it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

from skiff.cli.context import EXIT_ERROR, EXIT_OK, CliError, client
from skiff.cli.output import Table, age
from skiff.client.api import ApiClient, ApiError
from skiff.models.codec import decode, encode
from skiff.models.kinds import APP, SERVICE, TASK
from skiff.models.objects import Service

_ATTEMPTS = 5


def add_parser(sub: Any, client_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("rollout", help="a service's rollouts: status, history, undo")
    r = p.add_subparsers(dest="rollout_command", metavar="COMMAND")
    r.required = True
    q = r.add_parser("status", help="wait until the latest spec runs everywhere "
                                    "(exit 1 if the rollout fails)")
    q.add_argument("target", metavar="APP/SERVICE")
    q.add_argument("--timeout", type=float, default=300.0)
    client_flags(q)
    q = r.add_parser("history", help="the service's recorded revisions")
    q.add_argument("target", metavar="APP/SERVICE")
    client_flags(q)
    for verb, text in (("pause", "replace no more replicas until resumed"),
                       ("resume", "go on with a paused rollout")):
        q = r.add_parser(verb, help=text)
        q.add_argument("target", metavar="APP/SERVICE")
        client_flags(q)
    q = r.add_parser("undo", help="go back to the previous (or a given) revision")
    q.add_argument("target", metavar="APP/SERVICE")
    q.add_argument("--to-revision", type=int, metavar="N")
    client_flags(q)


def _split(target: str) -> tuple[str, str]:
    app, sep, name = target.partition("/")
    if not sep or not app or not name or "/" in name:
        raise CliError(f"expected APP/SERVICE, got {target!r}")
    return app, name


async def _service(api: ApiClient, app: str, name: str) -> Service:
    try:
        return decode(Service, await api.get(SERVICE, name, app))
    except ApiError as exc:
        if exc.code == "NotFound":
            raise CliError(f"no service {app}/{name}") from None
        raise


async def _undo(api: ApiClient, app: str, name: str, to: int | None) -> int:
    service = await _service(api, app, name)
    revisions = service.status.revisions
    if to is None:
        if len(revisions) < 2:
            raise CliError(f"service {app}/{name} has no earlier revision to go back to")
        target = revisions[-2]
    else:
        found = [r for r in revisions if r.revision == to]
        if not found:
            known = ", ".join(str(r.revision) for r in revisions) or "none"
            raise CliError(f"service {app}/{name} has no revision {to} (kept: {known})")
        target = found[0]
    from controller.reconcilers.app_plan import NotInApp, app_view
    from skiff.models.appspec import AppSpec
    for _ in range(_ATTEMPTS):
        stored = await api.get(APP, app)
        try:
            spec = app_view(decode(AppSpec, stored["spec"]), target.spec)
        except NotInApp as exc:
            raise CliError(f"cannot go back to revision {target.revision}: {exc}") from None
        stored["spec"]["services"][name] = encode(spec)
        try:
            await api.update(APP, stored)
            break
        except ApiError as exc:
            if exc.code != "Conflict":
                raise
    else:
        raise CliError(f"app {app} kept changing; try again")
    print(f"service/{app}/{name} rolled back to revision {target.revision} "
          f"({target.spec.image})")
    return EXIT_OK


def progress_line(app: str, name: str, service: Service,
                  tasks: list[dict[str, Any]]) -> tuple[str, bool]:
    """The service's rollout in one line (desired / updated / ready / available, and the
    tasks on their way), and whether it is done."""
    want = service.spec.container_hash()
    live = [t for t in tasks if t["spec"]["desiredState"] == "running"]
    new = [t for t in live if t["spec"]["specHash"] == want]
    ready = [t for t in new if t["status"]["state"] == "running"
             and t["status"].get("health") in (None, "healthy")]
    available = [t for t in live if t["status"]["state"] == "running"]
    moving = sorted({t["status"]["state"] for t in new} - {"running"})
    desired = service.spec.replicas
    line = (f"{app}/{name}: desired {desired}, updated {len(new)}, ready {len(ready)}, "
            f"available {len(available)}" + (f" ({', '.join(moving)})" if moving else ""))
    return line, len(ready) == desired and len(live) == len(new)


def _why_not(tasks: list[dict[str, Any]]) -> list[str]:
    """Failing replicas (exit code, OOM, health, last output) first, then pending ones."""
    out = []
    for t in tasks:
        st = t["status"]
        name = t["metadata"]["name"]
        if st["state"] == "failed" or st.get("restarts", 0) > 0 or \
                st.get("health") == "unhealthy":
            cause = "OOMKilled" if st.get("oomKilled") else \
                "unhealthy" if st.get("health") == "unhealthy" else \
                f"exit code {st.get('exitCode')}"
            out.insert(0, f"{name}: {cause}: {st.get('message', '')}")
        elif st["state"] == "pending" and t["spec"]["desiredState"] == "running":
            out.append(f"{name}: pending: {st.get('message', '')}")
    return out


class _Progress:
    """Where a rollout stands: redrawn in place with rich on a terminal, else a
    timestamped line each time it changes (logs, CI)."""

    def __init__(self) -> None:
        self.live = None
        self.last = ""
        if sys.stdout.isatty():
            from rich.live import Live
            self.live = Live(refresh_per_second=4, transient=True)
            self.live.start()

    def show(self, line: str) -> None:
        if self.live is not None:
            from rich.text import Text
            self.live.update(Text(f"{time.strftime('%H:%M:%S')} {line}"))
        elif line != self.last:
            print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)
        self.last = line

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()


async def rollout_status(api: ApiClient, app: str, name: str, timeout: float) -> int:
    """Until the latest spec runs (and is healthy) on every replica: EXIT_OK; or until the
    rollout pauses or rolls back: EXIT_ERROR with the failing replicas."""
    progress = _Progress()
    try:
        return await _follow_rollout(api, app, name, timeout, progress)
    finally:
        progress.close()


async def _follow_rollout(api: ApiClient, app: str, name: str, timeout: float,
                          progress: _Progress) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            service = decode(Service, await api.get(SERVICE, name, app))
        except ApiError as exc:
            # Just applied: the app reconciler makes the Service in a moment.
            if exc.code != "NotFound" or time.monotonic() > deadline:
                raise CliError(f"no service {app}/{name}") from None
            progress.show(f"{app}/{name}: waiting for the service to be made")
            await asyncio.sleep(0.3)
            continue
        tasks = (await api.list(TASK, app=app, service=name))["items"]
        line, done = progress_line(app, name, service, tasks)
        state = service.status.rollout
        if state.state in ("rolling back", "rolled back") or \
                (state.state == "paused" and not done):
            print(f"service/{app}/{name}: rollout {state.state}: {state.message}")
            for why in _why_not(tasks)[:5]:
                print(f"  {why}")
            return EXIT_ERROR
        if done:
            print(f"service/{app}/{name} successfully rolled out ({line})")
            return EXIT_OK
        progress.show(line)
        if time.monotonic() > deadline:
            reasons = "; ".join(_why_not(tasks)[:3])
            raise CliError(f"service/{app}/{name}: rollout not done after {timeout:.0f}s "
                           f"({line})" + (f": {reasons}" if reasons else ""))
        await asyncio.sleep(0.5)


async def cmd_rollout(args: argparse.Namespace) -> int:
    app, name = _split(args.target)
    async with client(args) as api:
        if args.rollout_command == "undo":
            return await _undo(api, app, name, args.to_revision)
        if args.rollout_command in ("pause", "resume"):
            await _service(api, app, name)  # a clear error if there is no such service
            await api.request("POST", f"/api/v1/services/{app}/{name}/{args.rollout_command}")
            print(f"service/{app}/{name} {args.rollout_command}d")
            return EXIT_OK
        if args.rollout_command == "status":
            await _service(api, app, name)  # a typo fails at once, not after --timeout
            return await rollout_status(api, app, name, args.timeout)
        service = await _service(api, app, name)
        table = Table(["REVISION", "IMAGE", "APPLIED", "CHANGE"])
        rows, previous = [], None
        for r in service.status.revisions:
            change = "created" if previous is None else ", ".join(
                k for k in ("image", "command", "environment", "volumes", "ports")
                if getattr(previous.spec, k) != getattr(r.spec, k)) or "other fields"
            rows.append([str(r.revision), r.spec.image, f"{age(r.at)} ago", change])
            previous = r
        table.print(rows)
        if not rows:
            print(f"service/{app}/{name} has no recorded revisions yet")
    return EXIT_OK
