"""skiff apply and skiff config."""

from __future__ import annotations

import argparse
import json
from typing import Any

import yaml

from skiff.cli.apply_builds import build_services
from skiff.cli.context import EXIT_OK, client
from skiff.cli.manifest_input import load, warn
from skiff.client.api import ApiClient
from skiff.manifest import LoadResult, to_compose
from skiff.manifest.compose_out import escape_interpolation


async def cmd_apply(args: argparse.Namespace) -> int:
    result = load(args.file, args.project_name, args.strict)
    warn(result)
    async with client(args) as api:
        resp = await apply_loaded(api, result, source=", ".join(args.file),
                                  dry_run=args.dry_run, verbose=args.verbose,
                                  progress=args.progress, no_cache=args.no_cache)
        if args.wait and not args.dry_run:
            return await wait_rolled_out(api, resp, args.timeout)
    return EXIT_OK


async def wait_rolled_out(api: ApiClient, resp: dict[str, Any], timeout: float) -> int:
    """Each created or changed service's rollout, in turn; the worst exit code."""
    from skiff.cli.rollout_cmds import rollout_status
    app = resp["app"]["metadata"]["name"]
    code = EXIT_OK
    for svc in resp.get("services", []):
        if svc["action"] in ("create", "update"):
            code = max(code, await rollout_status(api, app, svc["name"], timeout))
    return code


async def apply_loaded(api: ApiClient, result: LoadResult, *, source: str, dry_run: bool,
                       verbose: bool = False, progress: str = "auto",
                       no_cache: bool = False) -> dict[str, Any]:
    """Build what has `build:`, apply, and print what changed; the server's answer."""
    app = await build_services(api, result.app, progress=progress, dry_run=dry_run,
                               no_cache=no_cache)
    resp: dict[str, Any] = await api.apply(to_compose(app), source=source, dry_run=dry_run)
    for warning in resp.get("warnings", []):
        if warning not in result.warnings:
            print(f"warning: {warning}")
    name = resp["app"]["metadata"]["name"]
    suffix = " (dry run)" if resp["dryRun"] else ""
    print(f"app/{name} {resp['action']}{suffix}")
    if resp["action"] == "unchanged":
        return resp
    for svc in resp["services"]:
        verb = {"create": "created", "update": "configured", "delete": "deleted",
                "unchanged": "unchanged"}[svc["action"]]
        print(f"  service/{name}/{svc['name']} {verb}{suffix}")
        if dry_run or verbose:
            for change in svc.get("changes", []):
                print(f"      {change}")
    if dry_run or verbose:
        for change in resp.get("otherChanges", []):
            print(f"  {change}")
    return resp


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
