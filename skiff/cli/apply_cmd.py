"""skiff apply and skiff config."""

from __future__ import annotations

import argparse
import json

import yaml

from skiff.cli.apply_builds import build_services
from skiff.cli.context import EXIT_OK, client
from skiff.cli.manifest_input import load, warn
from skiff.manifest import to_compose
from skiff.manifest.compose_out import escape_interpolation


async def cmd_apply(args: argparse.Namespace) -> int:
    result = load(args.file, args.project_name, args.strict)
    warn(result)
    async with client(args) as api:
        app = await build_services(api, result.app, progress=args.progress,
                                   dry_run=args.dry_run, no_cache=args.no_cache)
        resp = await api.apply(to_compose(app), source=", ".join(args.file),
                               dry_run=args.dry_run)
    for warning in resp.get("warnings", []):
        if warning not in result.warnings:
            print(f"warning: {warning}")
    name = resp["app"]["metadata"]["name"]
    suffix = " (dry run)" if resp["dryRun"] else ""
    print(f"app/{name} {resp['action']}{suffix}")
    if resp["action"] == "unchanged":
        return EXIT_OK
    for svc in resp["services"]:
        verb = {"create": "created", "update": "configured", "delete": "deleted",
                "unchanged": "unchanged"}[svc["action"]]
        print(f"  service/{name}/{svc['name']} {verb}{suffix}")
        if args.dry_run or args.verbose:
            for change in svc.get("changes", []):
                print(f"      {change}")
    if args.dry_run or args.verbose:
        for change in resp.get("otherChanges", []):
            print(f"  {change}")
    return EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    result = load(args.file, args.project_name, args.strict)
    warn(result)
    if args.quiet:
        return EXIT_OK
    doc = escape_interpolation(to_compose(result.app))
    if args.output == "json":
        print(json.dumps(doc, indent=2))
    else:
        print(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False), end="")
    return EXIT_OK
