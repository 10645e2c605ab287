"""skiff node ls|inspect|label|drain|activate|rm."""

from __future__ import annotations

import argparse
import json
from typing import Any

from skiff.cli.context import EXIT_OK, CliError, client
from skiff.client.api import ApiClient, ApiError
from skiff.models.kinds import NODE

_ATTEMPTS = 5


async def _change(api: ApiClient, name: str, edit: Any) -> dict[str, Any]:
    """Read, edit, write back with the read's resourceVersion; retry a lost race."""
    for _ in range(_ATTEMPTS):
        node = await api.get(NODE, name)
        edit(node)
        try:
            return await api.update(NODE, node)
        except ApiError as exc:
            if exc.code != "Conflict":
                raise
    raise CliError(f"node {name} kept changing; try again")


def _labels(pairs: list[str]) -> tuple[dict[str, str], list[str]]:
    add, remove = {}, []
    for item in pairs:
        if item.endswith("-") and "=" not in item:
            remove.append(item[:-1])
            continue
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"{item!r}: expected KEY=VALUE, or KEY- to remove it")
        add[key] = value
    return add, remove


async def cmd_node(args: argparse.Namespace) -> int:
    sub = args.node_command
    async with client(args) as api:
        if sub == "ls":
            from skiff.cli.get_cmd import cmd_get
            args.kind, args.name, args.app, args.output, args.watch = \
                "nodes", None, None, None, False
            return await cmd_get(args)
        if sub == "inspect":
            print(json.dumps(await api.get(NODE, args.name), indent=2))
            return EXIT_OK
        if sub == "label":
            add, remove = _labels(args.labels)

            def relabel(node: dict[str, Any]) -> None:
                labels = node["metadata"].setdefault("labels", {})
                labels.update(add)
                for key in remove:
                    labels.pop(key, None)
            await _change(api, args.name, relabel)
        elif sub in ("drain", "pause", "activate"):
            def availability(node: dict[str, Any]) -> None:
                spec = node.setdefault("spec", {})
                spec["unschedulable"] = sub != "activate"
                spec["drain"] = sub == "drain"
            await _change(api, args.name, availability)
        elif sub == "rm":
            node = await api.get(NODE, args.name)
            if node["status"].get("ready") and not args.force:
                raise CliError(f"node {args.name} is up; drain it first, or use --force")
            await api.request("DELETE", f"/api/v1/nodes/{args.name}")
            print(f"node/{args.name} removed")
            return EXIT_OK
        done = {"label": "labeled", "drain": "drained", "pause": "paused",
                "activate": "activated"}[sub]
        print(f"node/{args.name} {done}")
    return EXIT_OK
