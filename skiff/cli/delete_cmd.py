"""skiff delete -f FILE | skiff delete KIND NAME: remove, then wait until it is gone. An
app's volumes stay unless --volumes."""

from __future__ import annotations

import argparse
import asyncio

from skiff.cli.context import EXIT_OK, CliError, client
from skiff.cli.get_cmd import parse_kind, split_name
from skiff.cli.manifest_input import load
from skiff.client.api import ApiClient, ApiError
from skiff.models.kinds import APP, SERVICE, TASK, VOLUME


async def _wait_app_gone(api: ApiClient, app: str, patience: float) -> None:
    """Services and tasks go once the reconcilers have seen the app's deletion."""
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        services = (await api.list(SERVICE, app=app))["items"]
        tasks = (await api.list(TASK, app=app))["items"]
        if not services and not tasks:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise CliError(f"app/{app} deleted, but {len(services)} services and "
                           f"{len(tasks)} tasks still remain after {patience:.0f}s")
        await asyncio.sleep(0.2)


async def cmd_delete(args: argparse.Namespace) -> int:
    if args.file:
        if args.kind or args.name:
            raise CliError("give either -f FILE or KIND NAME, not both")
        kind, name, app = APP, load(args.file, args.project_name, args.strict).app.name, None
    elif args.kind and args.name:
        kind = parse_kind(args.kind)
        name, app = split_name(kind, args.name)
    else:
        raise CliError("what to delete? `skiff delete -f app.yml` or `skiff delete app NAME`")
    async with client(args) as api:
        try:
            await api.delete(kind, name, app)
        except ApiError as exc:
            if exc.code == "NotFound" and args.ignore_not_found:
                return EXIT_OK
            raise
        label = f"{kind.name.lower()}/{app + '/' if app else ''}{name}"
        print(f"{label} deleted")
        if kind is APP and (args.wait or args.volumes):
            await _wait_app_gone(api, name, args.timeout)
        if kind is APP and args.volumes:
            owned = [v["metadata"]["name"] for v in (await api.list(VOLUME))["items"]
                     if v["metadata"].get("app") == name]
            if owned:
                from skiff.cli.volume_cmds import remove_volumes
                return await remove_volumes(api, owned)
    return EXIT_OK
