"""skiff get KIND [NAME] [-o json|yaml|wide|name] [-w]."""

from __future__ import annotations

import argparse
from typing import Any

from skiff.cli.columns import columns_for, row
from skiff.cli.context import EXIT_OK, CliError, client
from skiff.cli.output import Table, dump
from skiff.models.codec import decode
from skiff.models.kinds import Kind, UnknownKind, kind_for
from skiff.models.objects import qualified_name


def parse_kind(word: str) -> Kind:
    try:
        return kind_for(word)
    except UnknownKind as exc:
        raise CliError(str(exc)) from None


def split_name(kind: Kind, name: str) -> tuple[str, str | None]:
    """``app/name`` for kinds that belong to an app, else ``name``."""
    if kind.namespaced:
        app, sep, rest = name.partition("/")
        if not sep or not app or not rest:
            raise CliError(f"{kind.plural} are named APP/NAME, got {name!r}")
        return rest, app
    if "/" in name:
        raise CliError(f"{kind.plural} are named NAME, got {name!r}")
    return name, None


async def cmd_get(args: argparse.Namespace) -> int:
    kind = parse_kind(args.kind)
    fmt = args.output or "table"
    async with client(args) as api:
        if args.name:
            name, app = split_name(kind, args.name)
            items = [await api.get(kind, name, app)]
            revision = items[0]["metadata"]["resourceVersion"]
        else:
            listed = await api.list(kind, app=args.app)
            items, revision = listed["items"], listed["metadata"]["resourceVersion"]
        if args.name and fmt in ("json", "yaml"):
            dump(items[0], fmt)
            table = None
        else:
            table = _print(kind, items, fmt)
        if not args.watch:
            if not items and fmt in ("table", "wide"):
                print(f"No {kind.plural} found.")
            return EXIT_OK
        async for event in api.watch(kind, resource_version=revision, app=args.app):
            obj = event["object"]
            if args.name and qualified_name(decode(kind.cls, obj).metadata) != args.name:
                continue
            if fmt in ("json", "yaml"):
                dump({"type": event["type"], "object": obj}, fmt)
            elif fmt == "name" or table is None:
                _print(kind, [obj], fmt)
            else:
                cells = row_of(kind, obj, fmt)
                if event["type"] == "DELETED":
                    cells[-1] = "(deleted)"
                table.print([cells])
    return EXIT_OK


def row_of(kind: Kind, obj: dict[str, Any], fmt: str) -> list[str]:
    return row(columns_for(kind.cls, fmt == "wide"), decode(kind.cls, obj))


def _print(kind: Kind, items: list[dict[str, Any]], fmt: str) -> Table | None:
    if fmt in ("json", "yaml"):
        dump({"kind": f"{kind.name}List", "items": items}, fmt)
        return None
    if fmt == "name":
        for obj in items:
            print(f"{kind.name.lower()}/{qualified_name(decode(kind.cls, obj).metadata)}")
        return None
    if fmt not in ("table", "wide"):
        raise CliError(f"unknown output format {fmt!r} (json, yaml, wide, name)")
    cols = columns_for(kind.cls, fmt == "wide")
    table = Table([h for h, _ in cols])
    table.print([row(cols, decode(kind.cls, obj)) for obj in items])
    return table
