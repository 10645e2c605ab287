"""skiff events [-w] [--for KIND/NAME] [--app APP]: what happened, newest last, like
`kubectl get events`; and the recent events of one object, for `skiff describe`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from skiff.cli.context import EXIT_OK, CliError, client
from skiff.cli.get_cmd import parse_kind
from skiff.cli.output import Table, age, dump
from skiff.client.api import ApiClient
from skiff.models.kinds import EVENT

HEADERS = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "SOURCE", "MESSAGE"]


def add_parser(sub: Any, client_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("events", help="what happened to apps, tasks and nodes (kept about "
                                      "an hour)")
    p.add_argument("-w", "--watch", action="store_true", help="then follow new ones")
    p.add_argument("--for", dest="involved", metavar="KIND/NAME",
                   help="one object: task/APP/NAME, node/NAME, ...")
    p.add_argument("--app", help="only this app's")
    p.add_argument("-o", "--output", choices=("json", "yaml"))
    client_flags(p)


def _object(event: dict[str, Any]) -> str:
    inv = event["involved"]
    app = f"{inv['app']}/" if inv.get("app") else ""
    return f"{inv['kind'].lower()}/{app}{inv['name']}"


def when(event: dict[str, Any]) -> str:
    return str(event.get("at") or event["metadata"].get("createdAt", ""))


def _row(event: dict[str, Any]) -> list[str]:
    return [age(when(event)), event.get("type", "Normal"),
            event["reason"], _object(event), event.get("source", ""),
            event.get("message", "")]


def _matches(event: dict[str, Any], wanted: str | None) -> bool:
    return wanted is None or _object(event) == wanted


def _wanted(text: str | None) -> str | None:
    if text is None:
        return None
    kind_word, sep, name = text.partition("/")
    if not sep or not name:
        raise CliError(f"--for {text!r}: expected KIND/NAME (task/APP/NAME, node/NAME)")
    kind = parse_kind(kind_word)
    return f"{kind.name.lower()}/{name}"


async def recent(api: ApiClient, obj: str, app: str | None, limit: int = 10
                 ) -> list[dict[str, Any]]:
    """The last `limit` events of `obj` ("task/app/name"), oldest first."""
    items = (await api.list(EVENT, app=app))["items"]
    mine = [e for e in items if _object(e) == obj]
    mine.sort(key=when)
    return mine[-limit:]


async def cmd_events(args: argparse.Namespace) -> int:
    wanted = _wanted(args.involved)
    async with client(args) as api:
        listed = await api.list(EVENT, app=args.app)
        items = sorted((e for e in listed["items"] if _matches(e, wanted)),
                       key=when)
        if args.output:
            dump(items, args.output)
        table = Table(HEADERS)
        if not args.output:
            table.print([_row(e) for e in items])
            if not items and not args.watch:
                print("No events found.")
        if not args.watch:
            return EXIT_OK
        revision = listed["metadata"]["resourceVersion"]
        async for change in api.watch(EVENT, resource_version=revision, app=args.app):
            event = change["object"]
            if change["type"] != "ADDED" or not _matches(event, wanted):
                continue
            if args.output:
                dump(event, args.output)
            else:
                table.print([_row(event)])
    return EXIT_OK
