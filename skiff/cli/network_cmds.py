"""skiff network create|ls|inspect|rm|connect|disconnect.

connect and disconnect change the app, not the network: they edit the stored App's spec
(the service's networks, and an ``external: true`` entry for a network the app does not
own) and write it back with its resourceVersion, as an apply would. The reconcilers then
roll the change out like any other; the next ``skiff apply`` of the app's file replaces
it, so put lasting changes in the file.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import Any

from skiff.cli.context import EXIT_ERROR, EXIT_OK, CliError, client
from skiff.cli.output import dump
from skiff.client.api import ApiClient, ApiError
from skiff.models.kinds import APP, NETWORK

_ATTEMPTS = 5
_KEY = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")  # a compose network key

CONNECT_HELP = ("put a service on a network: edits the app's stored spec (adding the "
                "network as external if the app does not own it); the reconcilers roll "
                "it out, and the next apply of the app's file undoes it")
DISCONNECT_HELP = ("take a service off a network: edits the app's stored spec; the "
                   "reconcilers roll it out, and the next apply of the app's file undoes it")


def add_parser(sub: Any, client_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("network", help="cluster-wide networks")
    net_sub = p.add_subparsers(dest="network_command", metavar="COMMAND")
    net_sub.required = True
    q = net_sub.add_parser("create", help="make a standalone network apps can join "
                                          "(external: true)")
    q.add_argument("name")
    q.add_argument("--subnet", metavar="CIDR", help="e.g. 10.20.0.0/16 (at most /24; "
                                                   "default: the next free /20)")
    q.add_argument("--internal", action="store_true", help="no traffic to or from outside")
    q.add_argument("--attachable", action="store_true")
    q.add_argument("--label", action="append", default=[], metavar="K=V")
    client_flags(q)
    q = net_sub.add_parser("ls", help="list networks")
    q.add_argument("-o", "--output", choices=("json", "yaml", "wide", "name"))
    client_flags(q)
    q = net_sub.add_parser("inspect", help="networks in full, as JSON or YAML")
    q.add_argument("names", nargs="+", metavar="NAME")
    q.add_argument("-o", "--output", choices=("json", "yaml"), default="json")
    client_flags(q)
    q = net_sub.add_parser("rm", help="remove standalone networks no service is on")
    q.add_argument("names", nargs="+", metavar="NAME")
    client_flags(q)
    for verb, text in (("connect", CONNECT_HELP), ("disconnect", DISCONNECT_HELP)):
        q = net_sub.add_parser(verb, help=text, description=text + ".")
        q.add_argument("network", metavar="NETWORK", help="the network's cluster name "
                                                          "(as `skiff network ls` shows)")
        q.add_argument("target", metavar="APP/SERVICE")
        if verb == "connect":
            q.add_argument("--alias", action="append", default=[], metavar="ALIAS",
                           help="another DNS name of the service on this network")
        client_flags(q)


def _labels(pairs: list[str]) -> dict[str, str]:
    out = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--label {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _target(text: str) -> tuple[str, str]:
    app, sep, service = text.partition("/")
    if not sep or not app or not service or "/" in service:
        raise CliError(f"expected APP/SERVICE, got {text!r}")
    return app, service


def _key_of(app: dict[str, Any], network: str) -> str | None:
    """The app's compose key for the network whose cluster name is ``network``."""
    nets = app["spec"].get("networks") or {}
    return next((k for k, n in nets.items() if n.get("name") == network), None)


def _free_key(nets: dict[str, Any], network: str) -> str:
    base = network if _KEY.fullmatch(network) else "external"
    key, n = base, 1
    while key in nets:
        n += 1
        key = f"{base}_{n}"
    return key


def _service(app: dict[str, Any], name: str) -> dict[str, Any]:
    services = app["spec"].get("services") or {}
    if name not in services:
        have = ", ".join(sorted(services)) or "none"
        raise CliError(f"app {app['metadata']['name']} has no service {name!r} "
                       f"(it has: {have})")
    svc: dict[str, Any] = services[name]
    return svc


def connect(app: dict[str, Any], service: str, network: str, aliases: list[str]) -> None:
    """Edit an App (as JSON) so that ``service`` is on ``network``."""
    svc = _service(app, service)
    key = _key_of(app, network)
    if key is None:
        nets = app["spec"].setdefault("networks", {})
        key = _free_key(nets, network)
        nets[key] = {"name": network, "external": True}
    joined = svc.setdefault("networks", {})
    entry = joined.get(key)
    if entry is None:
        joined[key] = {"aliases": list(dict.fromkeys(aliases))}
        return
    have = entry.setdefault("aliases", [])
    new = [a for a in dict.fromkeys(aliases) if a not in have]
    if not new:
        raise CliError(f"service {app['metadata']['name']}/{service} is already on network "
                       f"{network}" + (" with those aliases" if aliases else ""))
    have.extend(new)


def disconnect(app: dict[str, Any], service: str, network: str) -> None:
    """Edit an App (as JSON) so that ``service`` is no longer on ``network``."""
    svc = _service(app, service)
    key = _key_of(app, network)
    joined = svc.get("networks") or {}
    who = f"{app['metadata']['name']}/{service}"
    if key is None or key not in joined:
        raise CliError(f"service {who} is not on network {network}")
    if len(joined) == 1:
        # With no network at all a service lands on the app's default network.
        raise CliError(f"network {network} is the only network of service {who}; connect "
                       "it to another first")
    del joined[key]
    nets = app["spec"]["networks"]
    in_use = any(key in (s.get("networks") or {}) for s in app["spec"]["services"].values())
    if nets[key].get("external") and not in_use:
        del nets[key]  # an external entry nothing uses says nothing: drop it


async def _edit_app(api: ApiClient, name: str, edit: Callable[[dict[str, Any]], None]
                    ) -> dict[str, Any]:
    """Read, edit, write back with the read's resourceVersion; retry a lost race."""
    for _ in range(_ATTEMPTS):
        app = await api.get(APP, name)
        edit(app)
        try:
            return await api.update(APP, app)
        except ApiError as exc:
            if exc.code != "Conflict":
                raise
    raise CliError(f"app {name} kept changing; try again")


async def _connect(api: ApiClient, args: argparse.Namespace) -> int:
    app_name, service = _target(args.target)
    if args.network_command == "connect":
        app = await api.get(APP, app_name)
        if _key_of(app, args.network) is None:
            await _must_exist(api, args.network, app)
        await _edit_app(api, app_name,
                        lambda a: connect(a, service, args.network, args.alias))
        print(f"network/{args.network} connected to {app_name}/{service}")
    else:
        await _edit_app(api, app_name, lambda a: disconnect(a, service, args.network))
        print(f"network/{args.network} disconnected from {app_name}/{service}")
    return EXIT_OK


async def _must_exist(api: ApiClient, network: str, app: dict[str, Any]) -> None:
    """A clearer answer than the server's for a network that is not there at all."""
    try:
        await api.get(NETWORK, network)
    except ApiError as exc:
        if exc.code != "NotFound":
            raise
        hint = ""
        own = (app["spec"].get("networks") or {}).get(network)
        if own and not own.get("external"):
            hint = f" (app {app['metadata']['name']} calls its network {network} " \
                   f"{own.get('name')} in the cluster)"
        raise CliError(f"network {network} not found{hint}") from None


async def _remove(api: ApiClient, names: list[str]) -> int:
    """Remove each; carry on past failures, as docker network rm does."""
    code = EXIT_OK
    for name in names:
        try:
            await api.delete(NETWORK, name)
        except ApiError as exc:
            text = f"network {name} not found" if exc.code == "NotFound" else exc.message
            print(f"error: {text}", file=sys.stderr)
            code = EXIT_ERROR
            continue
        print(f"network/{name} removed")
    return code


async def cmd_network(args: argparse.Namespace) -> int:
    sub = args.network_command
    if sub == "ls":
        from skiff.cli.get_cmd import cmd_get
        args.kind, args.name, args.app, args.watch = "networks", None, None, False
        return await cmd_get(args)
    async with client(args) as api:
        if sub == "create":
            body: dict[str, Any] = {"name": args.name, "internal": args.internal,
                                    "attachable": args.attachable,
                                    "labels": _labels(args.label)}
            if args.subnet:
                body["subnet"] = args.subnet
            made = await api.create_network(body)
            print(f"network/{made['metadata']['name']} created")
            return EXIT_OK
        if sub == "inspect":
            found = [await api.get(NETWORK, name) for name in args.names]
            dump(found[0] if len(found) == 1 else found, args.output)
            return EXIT_OK
        if sub == "rm":
            return await _remove(api, args.names)
        return await _connect(api, args)
