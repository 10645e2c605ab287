"""skiff volume create|ls|inspect|rm|prune: named volumes, which live on one node each.

inspect shows Docker's fields (CreatedAt, Driver, Labels, Mountpoint, Name, Options,
Scope) plus the node. rm of a volume with data marks it; the node's agent removes the
folder and the object, and rm waits for that (--no-wait not to). prune removes every
volume no service or running task names and no stored app declares.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

from skiff.cli.context import EXIT_ERROR, EXIT_OK, CliError, client
from skiff.cli.output import dump
from skiff.client.api import ApiClient, ApiError
from skiff.models.kinds import APP, SERVICE, TASK, VOLUME

RM_WAIT_SECONDS = 60.0
TERMINAL = {"failed", "complete", "shutdown", "rejected", "orphaned"}


def add_parser(sub: Any, client_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("volume", help="named volumes (each lives on one node)")
    vol_sub = p.add_subparsers(dest="volume_command", metavar="COMMAND")
    vol_sub.required = True
    q = vol_sub.add_parser("create", help="make a named volume (apps use it as external, "
                                          "or by its name)")
    q.add_argument("name")
    q.add_argument("-d", "--driver", default="local")
    q.add_argument("--label", action="append", default=[], metavar="K=V")
    q.add_argument("-o", "--opt", action="append", default=[], metavar="K=V",
                   help="driver options (kept; the local driver uses none)")
    q.add_argument("--node", help="the node to keep it on (default: where it is first "
                                  "used)")
    client_flags(q)
    q = vol_sub.add_parser("ls", help="list volumes")
    q.add_argument("-q", "--quiet", action="store_true", help="names only")
    client_flags(q)
    q = vol_sub.add_parser("inspect", help="volumes in detail, as docker volume inspect")
    q.add_argument("names", nargs="+", metavar="NAME")
    q.add_argument("-f", "--format", choices=("json", "yaml"), default="json")
    client_flags(q)
    q = vol_sub.add_parser("rm", help="remove volumes and their data (refused while in use)")
    q.add_argument("names", nargs="+", metavar="NAME")
    q.add_argument("-f", "--force", action="store_true",
                   help="remove the object even if its node cannot remove the data")
    q.add_argument("--no-wait", action="store_true",
                   help="do not wait for the node to remove the data")
    client_flags(q)
    q = vol_sub.add_parser("prune", help="remove volumes nothing uses or declares")
    q.add_argument("-f", "--force", action="store_true", help="do not ask")
    client_flags(q)


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise CliError(f"{flag} {item!r}: expected KEY=VALUE")
        out[key] = value if sep else ""
    return out


def docker_view(vol: dict[str, Any]) -> dict[str, Any]:
    """`docker volume inspect`'s fields, plus where it lives."""
    meta, spec, status = vol["metadata"], vol.get("spec", {}), vol.get("status", {})
    return {
        "CreatedAt": status.get("createdAt") or meta.get("createdAt", ""),
        "Driver": spec.get("driver", "local"),
        "Labels": meta.get("labels") or {},
        "Mountpoint": status.get("mountpoint", ""),
        "Name": meta["name"],
        "Options": spec.get("driverOpts") or {},
        "Scope": "local",
        "Node": spec.get("node") or "",
        "App": meta.get("app") or "",
        "Status": "removing" if spec.get("deleting") else (
            "ready" if status.get("ready") else "not made yet (made where first used)"),
    }


async def _gone(api: ApiClient, name: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            await api.get(VOLUME, name)
        except ApiError as exc:
            if exc.code == "NotFound":
                return True
            raise
        await asyncio.sleep(0.2)
    return False


async def remove_volumes(api: ApiClient, names: list[str], *, force: bool = False,
                         wait: bool = True) -> int:
    """Remove each; carry on past failures, as docker volume rm does."""
    code = EXIT_OK
    for name in names:
        try:
            params = {"force": "1"} if force else None
            answer = await api.request("DELETE", f"/api/v1/volumes/{name}", params=params)
        except ApiError as exc:
            text = f"no such volume: {name}" if exc.code == "NotFound" else exc.message
            print(f"error: {text}", file=sys.stderr)
            code = EXIT_ERROR
            continue
        node = answer["volume"]["spec"].get("node")
        if not answer.get("removed") and wait and \
                not await _gone(api, name, time.monotonic() + RM_WAIT_SECONDS):
            print(f"error: node {node} has not removed volume {name}'s data yet (is its "
                  "agent up?); it will when it can, or use --force", file=sys.stderr)
            code = EXIT_ERROR
            continue
        print(name)
    return code


async def _unused(api: ApiClient) -> list[str]:
    volumes = (await api.list(VOLUME))["items"]
    used: set[str] = set()
    for svc in (await api.list(SERVICE))["items"]:
        used |= {m.get("source") for m in svc["spec"].get("volumes", [])
                 if m.get("type") == "volume"}
    for task in (await api.list(TASK))["items"]:
        if task.get("status", {}).get("state") not in TERMINAL:
            used |= {m.get("source") for m in task["spec"]["container"].get("volumes", [])
                     if m.get("type") == "volume"}
    for app in (await api.list(APP))["items"]:
        used |= {v.get("name") for v in app["spec"].get("volumes", {}).values()}
    return [v["metadata"]["name"] for v in volumes if v["metadata"]["name"] not in used
            and not v["spec"].get("deleting")]


async def cmd_volume(args: argparse.Namespace) -> int:
    sub = args.volume_command
    if sub == "ls" and not args.quiet:
        from skiff.cli.get_cmd import cmd_get
        args.kind, args.name, args.app, args.watch, args.output = \
            "volumes", None, None, False, None
        return await cmd_get(args)
    async with client(args) as api:
        if sub == "ls":
            for item in (await api.list(VOLUME))["items"]:
                print(item["metadata"]["name"])
            return EXIT_OK
        if sub == "create":
            body: dict[str, Any] = {"name": args.name, "driver": args.driver,
                                    "labels": _pairs(args.label, "--label"),
                                    "driverOpts": _pairs(args.opt, "--opt")}
            if args.node:
                body["node"] = args.node
            made = await api.request("POST", "/api/v1/volumes", body=body)
            print(made["metadata"]["name"])
            return EXIT_OK
        if sub == "inspect":
            found = []
            for name in args.names:
                try:
                    found.append(docker_view(await api.get(VOLUME, name)))
                except ApiError as exc:
                    if exc.code != "NotFound":
                        raise
                    raise CliError(f"no such volume: {name}") from None
            dump(found, args.format)
            return EXIT_OK
        if sub == "rm":
            return await remove_volumes(api, args.names, force=args.force,
                                        wait=not args.no_wait)
        unused = await _unused(api)
        if not unused:
            print("Total reclaimed volumes: 0")
            return EXIT_OK
        if not args.force and sys.stdin.isatty():
            answer = await asyncio.to_thread(
                input, f"WARNING! This will remove {len(unused)} volume(s) and their data: "
                + ", ".join(unused) + ". Continue? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                return EXIT_OK
        print("Deleted Volumes:")
        return await remove_volumes(api, unused)
