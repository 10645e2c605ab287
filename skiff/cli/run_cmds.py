"""The seed's one-container commands on the cluster: skiff run, ps, stop, start, rm.

Each container is a one-replica app of its own, named by --name (else `<image>-<hex>`),
whose single service carries the label `skiff.run=1`; `skiff ps` lists those apps as
`docker ps` lists containers. As with `docker run`, the restart policy is `no` unless
--restart says otherwise, so a container that exits stays exited (`ps -a`). `stop`
scales the app to 0 (the container is stopped and removed; `ps -a` shows the app as
Exited, `start` brings it back); `rm` deletes the app, refusing a running one without -f.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import re
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from skiff.cli.context import EXIT_ERROR, EXIT_OK, CliError, client
from skiff.cli.output import Table, age
from skiff.client.api import ApiClient, ApiError
from skiff.models.kinds import APP, TASK

RUN_LABEL = "skiff.run"
ENDED = {"failed", "complete", "shutdown", "rejected", "orphaned"}
_ATTEMPTS = 5


def add_parsers(sub: Any, client_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("run", help="run one container on the cluster (a one-replica app)")
    p.add_argument("-d", "--detach", action="store_true",
                   help="return once it runs (default: follow its output)")
    p.add_argument("-p", "--publish", action="append", default=[], metavar="HOST:CONTAINER")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    p.add_argument("-v", "--volume", action="append", default=[], metavar="SRC:DST[:ro]")
    p.add_argument("--name", help="its name (default: <image>-<random>)")
    p.add_argument("--network", help="an existing network to join (skiff network create)")
    p.add_argument("--network-alias", action="append", default=[], metavar="ALIAS")
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("--restart", default="no", help="no, always, on-failure[:N], "
                                                   "unless-stopped (default: no)")
    p.add_argument("--entrypoint")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="CMD")
    client_flags(p)
    p = sub.add_parser("ps", help="containers started with skiff run")
    p.add_argument("-a", "--all", action="store_true", help="stopped and exited ones too")
    p.add_argument("-q", "--quiet", action="store_true", help="names only")
    client_flags(p)
    for verb, text in (("stop", "stop containers (skiff start runs them again)"),
                       ("start", "start stopped containers")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("names", nargs="+", metavar="NAME")
        client_flags(p)
    p = sub.add_parser("rm", help="remove containers started with skiff run")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("-f", "--force", action="store_true", help="even if running")
    client_flags(p)


def default_name(image: str) -> str:
    base = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0].lower()
    base = re.sub(r"[^a-z0-9_-]", "-", base).strip("-_")[:40] or "run"
    return f"{base}-{secrets.token_hex(3)}"


def run_document(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """The compose document of `skiff run`'s flags: one service named like the app."""
    service: dict[str, Any] = {"image": args.image, "labels": {RUN_LABEL: "1"},
                               "restart": args.restart}
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if cmd:
        service["command"] = cmd
    if args.entrypoint is not None:
        service["entrypoint"] = [args.entrypoint] if args.entrypoint else []
    for key, value in (("working_dir", args.workdir), ("user", args.user)):
        if value:
            service[key] = value
    if args.env:
        service["environment"] = list(args.env)
    if args.publish:
        service["ports"] = list(args.publish)
    doc: dict[str, Any] = {"name": name, "services": {name: service}}
    if args.volume:
        service["volumes"] = list(args.volume)
        named = {v.split(":")[0] for v in args.volume
                 if ":" in v and not v.startswith(("/", ".", "~"))}
        # docker run -v data:/x names the volume itself, not <app>_data.
        doc["volumes"] = {v: {"name": v} for v in sorted(named)}
    if args.network:
        service["networks"] = {args.network: {"aliases": args.network_alias}
                               if args.network_alias else None}
        doc["networks"] = {args.network: {"external": True}}
    elif args.network_alias:
        raise CliError("--network-alias needs --network")
    return doc


async def cmd_run(args: argparse.Namespace) -> int:
    from skiff.cli.apply_cmd import apply_loaded
    from skiff.cli.compose_cmds import _follow_logs
    from skiff.manifest import ManifestError, load_text
    from skiff.manifest.compose_out import escape_interpolation

    name = args.name or default_name(args.image)
    # Taken literally, as docker run takes them: no compose ${VAR} interpolation.
    text = yaml.safe_dump(escape_interpolation(run_document(args, name)), sort_keys=False)
    try:
        result = load_text(text, "skiff run", Path.cwd(), dict(os.environ))
    except ManifestError as exc:
        raise CliError(str(exc).replace("skiff run:", "skiff run")) from None
    async with client(args) as api:
        try:
            await api.get(APP, name)
            raise CliError(f"the name {name} is already in use (skiff rm {name} first)")
        except ApiError as exc:
            if exc.code != "NotFound":
                raise
        await _quietly(apply_loaded(api, result, source="skiff run", dry_run=False))
        # Like docker run -d: back once it started, even if it already exited.
        await _until(api, name, lambda tasks: any(
            t["status"]["state"] in ("running", *ENDED) for t in tasks), timeout=300.0,
            what="start")
    print(name)
    if not args.detach:
        print(f"following {name}'s output; Ctrl-C leaves it running (skiff stop {name})",
              file=sys.stderr)
        ns = argparse.Namespace(**vars(args))
        ns.tail = None
        ns.timestamps = False
        await _follow_logs(ns, name, [name], follow=True)
    return EXIT_OK


async def _quietly(job: Any) -> Any:
    """apply's own lines are noise here: docker run prints the name only."""
    with contextlib.redirect_stdout(io.StringIO()):
        return await job


def _is_run_app(app: dict[str, Any]) -> bool:
    services = app["spec"].get("services", {})
    return len(services) == 1 and all(
        (s.get("labels") or {}).get(RUN_LABEL) == "1" for s in services.values())


def _status(app: dict[str, Any], tasks: list[dict[str, Any]]) -> tuple[str, bool]:
    """docker ps's STATUS, and whether it runs."""
    svc = next(iter(app["spec"]["services"].values()))
    if svc.get("deploy", {}).get("replicas", 1) == 0:
        return "Exited (stopped)", False
    live = [t for t in tasks if t["spec"].get("desiredState") == "running"]
    if not live:
        return "Created", False
    task = live[-1]
    state = task["status"]["state"]
    if state == "running":
        return f"Up {age(task['status'].get('startedAt'))}", True
    if state in ENDED:
        code = task["status"].get("exitCode")
        return f"Exited ({code if code is not None else '?'}) " \
               f"{age(task['status'].get('finishedAt'))} ago", False
    return state.capitalize(), False


async def cmd_ps(args: argparse.Namespace) -> int:
    async with client(args) as api:
        apps = [a for a in (await api.list(APP))["items"] if _is_run_app(a)]
        tasks = (await api.list(TASK))["items"]
    rows = []
    for app in sorted(apps, key=lambda a: a["metadata"].get("createdAt", ""), reverse=True):
        name = app["metadata"]["name"]
        mine = [t for t in tasks if t["metadata"].get("app") == name]
        status, running = _status(app, mine)
        if not running and not args.all:
            continue
        svc = next(iter(app["spec"]["services"].values()))
        task = mine[-1] if mine else None
        cid = (task["status"].get("containerId") or "")[:12] if task else ""
        command = " ".join(svc.get("command") or [])
        ports = ", ".join(f"{p.get('published')}->{p['target']}/{p.get('protocol', 'tcp')}"
                          for p in svc.get("ports", []))
        node = task["spec"].get("nodeName") or "" if task else ""
        rows.append([cid or "-", svc["image"], f'"{command[:20]}"' if command else '""',
                     age(app["metadata"].get("createdAt")) + " ago", status, ports or "",
                     name, node or "-"])
    if args.quiet:
        for row in rows:
            print(row[6])
        return EXIT_OK
    table = Table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES",
                   "NODE"])
    if rows:
        table.print(rows)
    else:
        print("CONTAINER ID   IMAGE   COMMAND   CREATED   STATUS   PORTS   NAMES   NODE")
    return EXIT_OK


async def _set_replicas(api: ApiClient, name: str, replicas: int) -> None:
    for _ in range(_ATTEMPTS):
        app = await api.get(APP, name)
        if not _is_run_app(app):
            raise CliError(f"{name} is an app, not a container of skiff run (use skiff "
                           "apply or skiff compose)")
        svc = next(iter(app["spec"]["services"].values()))
        svc.setdefault("deploy", {})["replicas"] = replicas
        try:
            await api.update(APP, app)
            return
        except ApiError as exc:
            if exc.code != "Conflict":
                raise
    raise CliError(f"{name} kept changing; try again")


async def cmd_stop_start(args: argparse.Namespace) -> int:
    code = EXIT_OK
    async with client(args) as api:
        for name in args.names:
            try:
                await _set_replicas(api, name, 0 if args.command == "stop" else 1)
            except (ApiError, CliError) as exc:
                text = f"no such container: {name}" if getattr(exc, "code", "") == \
                    "NotFound" else str(exc)
                print(f"error: {text}", file=sys.stderr)
                code = EXIT_ERROR
                continue
            if args.command == "stop":
                await _until(api, name, lambda tasks: not any(
                    t["status"]["state"] not in ENDED for t in tasks))
            print(name)
    return code


async def _until(api: ApiClient, app: str, done: Callable[[list[dict[str, Any]]], bool],
                 timeout: float = 60.0, what: str = "stop") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if done((await api.list(TASK, app=app))["items"]):
            return
        await asyncio.sleep(0.2)
    tasks = (await api.list(TASK, app=app))["items"]
    why = next((t["status"].get("message") for t in tasks if t["status"].get("message")), "")
    raise CliError(f"{app} did not {what} within {timeout:.0f}s" + (f": {why}" if why else ""))


async def cmd_rm(args: argparse.Namespace) -> int:
    from skiff.cli.delete_cmd import _wait_app_gone
    code = EXIT_OK
    async with client(args) as api:
        for name in args.names:
            try:
                app = await api.get(APP, name)
                if not _is_run_app(app):
                    raise CliError(f"{name} is an app, not a container of skiff run "
                                   f"(skiff delete app {name})")
                tasks = (await api.list(TASK, app=name))["items"]
                _, running = _status(app, tasks)
                if running and not args.force:
                    raise CliError(f"cannot remove {name}: it is running (skiff stop {name} "
                                   "first, or rm -f)")
                await api.delete(APP, name)
                await _wait_app_gone(api, name, 120.0)
            except ApiError as exc:
                text = f"no such container: {name}" if exc.code == "NotFound" else \
                    exc.message
                print(f"error: {text}", file=sys.stderr)
                code = EXIT_ERROR
                continue
            except CliError as exc:
                print(f"error: {exc}", file=sys.stderr)
                code = EXIT_ERROR
                continue
            print(name)
    return code
