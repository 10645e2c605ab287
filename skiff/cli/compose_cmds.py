"""skiff compose up|down|ps|logs|config: docker compose's commands over skiff's own.

The files are found as docker compose finds them: -f (repeatable), else compose.yaml,
compose.yml, docker-compose.yaml or docker-compose.yml in this folder, with
compose.override.yaml/.yml (or docker-compose.override.*) merged on top when present.
The project (app) name is -p, else the file's `name`, else the folder's name.

up applies (building what has `build:`), and without -d follows the app's logs until
Ctrl-C, which leaves the app running (a cluster app outlives a terminal; `down` stops
it). --wait waits until every service runs all its replicas.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skiff.cli.context import EXIT_OK, CliError, client
from skiff.client.api import ApiClient
from skiff.models.kinds import SERVICE, TASK

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
TERMINAL = {"failed", "complete", "shutdown", "rejected", "orphaned"}


def add_parser(sub: Any, client_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("compose", help="docker compose's commands: up, down, ps, logs, "
                                       "config")
    # As docker compose takes them: before the command (skiff compose -f a -f b up), or
    # after it.
    p.add_argument("-f", "--file", dest="compose_files", action="append", metavar="FILE",
                   default=[])
    p.add_argument("-p", "--project-name", dest="compose_project")
    p.add_argument("--profile", dest="compose_profiles", action="append", default=[])
    compose_sub = p.add_subparsers(dest="compose_command", metavar="COMMAND")
    compose_sub.required = True

    def common(q: argparse.ArgumentParser, short_file: bool = True) -> None:
        flags = ("-f", "--file") if short_file else ("--file",)
        q.add_argument(*flags, action="append", metavar="FILE",
                       help="compose file(s), merged in order (default: compose.yaml ... "
                            "in this folder, and its override file)")
        q.add_argument("-p", "--project-name", help="the app's name")
        q.add_argument("--profile", action="append", default=[],
                       help="enable services of this profile (also COMPOSE_PROFILES)")
        q.add_argument("--strict", action="store_true",
                       help="compose keys skiff does not implement are errors")
        client_flags(q)

    q = compose_sub.add_parser("up", help="create or update the app, building images")
    common(q)
    q.add_argument("-d", "--detach", action="store_true",
                   help="return once applied (default: follow the logs)")
    q.add_argument("--build", action="store_true",
                   help="build images (always done for services with build:)")
    q.add_argument("--no-cache", action="store_true", help="build without the layer cache")
    q.add_argument("--wait", action="store_true",
                   help="wait until every service runs all its replicas")
    q.add_argument("--wait-timeout", type=float, default=300.0, metavar="SECONDS")
    q.add_argument("--progress", choices=("auto", "plain", "tty"), default="auto")
    q = compose_sub.add_parser("down", help="remove the app (its volumes with -v)")
    common(q)
    q.add_argument("-v", "--volumes", action="store_true",
                   help="also remove the app's named volumes and their data")
    q.add_argument("--timeout", type=float, default=120.0)
    q = compose_sub.add_parser("ps", help="the app's containers (tasks)")
    common(q)
    q.add_argument("-a", "--all", action="store_true", help="ended ones too")
    q = compose_sub.add_parser("logs", help="the services' output (-f follows, as docker "
                                            "compose logs -f; files with --file)")
    common(q, short_file=False)
    q.add_argument("services", nargs="*", metavar="SERVICE")
    q.add_argument("-f", "--follow", dest="follow", action="store_true")
    q.add_argument("--tail", type=int)
    q.add_argument("-t", "--timestamps", action="store_true")
    q = compose_sub.add_parser("config", help="the merged, normalised compose file")
    common(q)
    q.add_argument("-q", "--quiet", action="store_true", help="only validate")
    q.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")


def find_files(given: list[str] | None, folder: Path) -> list[str]:
    """-f as given, else the default file of `folder` and its override file."""
    if given:
        return given
    for name in DEFAULT_FILES:
        if (folder / name).is_file():
            stem = name.rsplit(".", 1)[0]
            files = [str(folder / name)]
            for ext in ("yaml", "yml"):
                override = folder / f"{stem}.override.{ext}"
                if override.is_file():
                    files.append(str(override))
                    break
            return files
    raise CliError(f"no compose file in {folder} (looked for {', '.join(DEFAULT_FILES)}); "
                   "name one with -f")


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from skiff.cli.manifest_input import load, warn
    if args.profile:
        known = os.environ.get("COMPOSE_PROFILES", "")
        os.environ["COMPOSE_PROFILES"] = ",".join(filter(None, [known, *args.profile]))
    result = load(find_files(args.file, Path.cwd()), args.project_name, args.strict)
    warn(result)
    return result


def _app_name(args: argparse.Namespace) -> str:
    if args.project_name and not args.file:
        return str(args.project_name)
    return str(_load(args).app.name)


async def _wait_running(api: ApiClient, app: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        services = (await api.list(SERVICE, app=app))["items"]
        tasks = (await api.list(TASK, app=app))["items"]
        short = []
        for svc in services:
            name = svc["metadata"]["name"]
            deploy = svc["spec"].get("deploy", {})
            want = deploy.get("replicas", 1) if deploy.get("mode") != "global" else None
            running = sum(1 for t in tasks if t["spec"]["service"] == name
                          and t["spec"].get("desiredState") == "running"
                          and t["status"]["state"] == "running")
            if (want is None and running == 0) or (want is not None and running < want):
                waiting = [t["status"].get("message") for t in tasks
                           if t["spec"]["service"] == name
                           and t["status"]["state"] not in ("running", *TERMINAL)]
                why = next((m for m in waiting if m), "")
                short.append(f"{name} {running}/{want if want is not None else '*'}"
                             + (f" ({why})" if why else ""))
        if services and not short:
            print(f"app/{app}: every service is running")
            return
        now = ", ".join(short)
        if now != last:
            print(f"waiting: {now}", file=sys.stderr)
            last = now
        if time.monotonic() > deadline:
            raise CliError(f"app/{app} not running after {timeout:.0f}s: {now}")
        await asyncio.sleep(0.5)


async def _follow_logs(args: argparse.Namespace, app: str, services: list[str],
                       follow: bool) -> None:
    from skiff.cli.task_cmds import cmd_logs
    names = services or [s["metadata"]["name"] for s in (await _services(args, app))]
    jobs = []
    for name in names:
        ns = argparse.Namespace(**vars(args))
        ns.target, ns.follow, ns.no_prefix = f"{app}/{name}", follow, False
        ns.tail = getattr(args, "tail", None)
        ns.timestamps = getattr(args, "timestamps", False)
        jobs.append(cmd_logs(ns))
    await asyncio.gather(*jobs)


async def _services(args: argparse.Namespace, app: str) -> list[dict[str, Any]]:
    async with client(args) as api:
        return list((await api.list(SERVICE, app=app))["items"])


async def cmd_compose(args: argparse.Namespace) -> int:
    args.file = [*args.compose_files, *(args.file or [])] or None
    args.project_name = args.project_name or args.compose_project
    args.profile = [*args.compose_profiles, *args.profile]
    sub = args.compose_command
    if sub == "config":
        from skiff.cli.apply_cmd import cmd_config
        args.file = find_files(args.file, Path.cwd())
        if args.profile:
            _load(args)  # sets COMPOSE_PROFILES for the load below
        return cmd_config(args)
    if sub == "up":
        from skiff.cli.apply_cmd import apply_loaded
        result = _load(args)
        async with client(args) as api:
            resp = await apply_loaded(api, result,
                                      source=", ".join(find_files(args.file, Path.cwd())),
                                      dry_run=False, progress=args.progress,
                                      no_cache=args.no_cache)
            if args.wait:
                from skiff.cli.apply_cmd import wait_rolled_out
                if await wait_rolled_out(api, resp, args.wait_timeout) != EXIT_OK:
                    raise CliError(f"app/{result.app.name}: a rollout failed (above)")
            if args.wait or not args.detach:
                await _wait_running(api, result.app.name, args.wait_timeout)
        if not args.detach:
            print(f"following the logs of app/{result.app.name}; Ctrl-C leaves it running "
                  "(skiff compose down stops it)", file=sys.stderr)
            with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
                await _follow_logs(args, result.app.name, [], follow=True)
        return EXIT_OK
    app = _app_name(args)
    if sub == "down":
        from skiff.cli.delete_cmd import cmd_delete
        ns = argparse.Namespace(**vars(args))
        ns.file, ns.kind, ns.name, ns.wait = None, "app", app, True
        ns.ignore_not_found = True
        return await cmd_delete(ns)
    if sub == "ps":
        if not args.all:
            return await _ps_live(args, app)
        from skiff.cli.get_cmd import cmd_get
        ns = argparse.Namespace(**vars(args))
        ns.kind, ns.name, ns.app, ns.watch, ns.output = "tasks", None, app, False, None
        return await cmd_get(ns)
    await _follow_logs(args, app, args.services, follow=args.follow)
    return EXIT_OK


async def _ps_live(args: argparse.Namespace, app: str) -> int:
    from skiff.cli.output import Table, age
    async with client(args) as api:
        tasks = (await api.list(TASK, app=app))["items"]
    table = Table(["NAME", "SERVICE", "NODE", "STATE", "CREATED", "MESSAGE"])
    rows = [[t["metadata"]["name"], t["spec"]["service"], t["spec"].get("nodeName") or "-",
             t["status"]["state"], age(t["metadata"].get("createdAt")),
             t["status"].get("message") or ""]
            for t in tasks if t["status"]["state"] not in TERMINAL]
    table.print(rows)
    if not rows:
        print(f"no running containers in app/{app}")
    return EXIT_OK
