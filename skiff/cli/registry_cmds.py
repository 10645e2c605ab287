"""skiff login|logout|push|pull: a registry and this node's image store.

push and pull act on a store directly, like `skiff image import` (default: the local
agent's, --store to choose). Credentials live in auth.json beside the CLI config
($SKIFF_CONFIG's directory, else ~/.config/skiff/), 0600, docker's "auths" format.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path
from typing import Any

from skiff.cli.context import EXIT_OK, CliError
from skiff.cli.image_cmds import _size, store_of

COMMANDS = ("login", "logout", "push", "pull")


def auth_path() -> Path:
    from skiff.client.config import default_config_path
    return default_config_path().parent / "auth.json"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("login", help="log in to a registry (checks the credentials first)")
    p.add_argument("registry", metavar="REGISTRY", help="host[:port]")
    p.add_argument("-u", "--username")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from stdin (else it is prompted for)")
    _registry_flags(p)
    p = sub.add_parser("logout", help="forget a registry's credentials")
    p.add_argument("registry", metavar="REGISTRY")
    p = sub.add_parser("push", help="push an image from this node's store to its registry")
    p.add_argument("ref", metavar="NAME[:TAG]", help="e.g. 10.0.0.1:5000/app:1")
    p.add_argument("--store", type=Path, help="image store (default: the local agent's)")
    _registry_flags(p)
    p = sub.add_parser("pull", help="pull an image from a registry into this node's store")
    p.add_argument("ref", metavar="NAME[:TAG|@DIGEST]")
    p.add_argument("--store", type=Path, help="image store (default: the local agent's)")
    _registry_flags(p)


def _registry_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                   help="speak plain HTTP to this registry (also $SKIFF_INSECURE_REGISTRIES;"
                        " localhost and 127.0.0.0/8 always are)")


def dispatch(args: argparse.Namespace) -> int:
    from agent.images.errors import ImageError

    try:
        if args.command == "logout":
            return _logout(args)
        if args.command == "login":
            return _login(args)
        return asyncio.run({"push": _push, "pull": _pull}[args.command](args))
    except (ImageError, OSError) as exc:
        raise CliError(str(exc)) from None


def _options(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from agent.images.registry import AuthFile, RegistryOptions
    return RegistryOptions.from_auth_file(AuthFile(auth_path()),
                                          tuple(args.insecure_registry))


def _login(args: argparse.Namespace) -> int:
    from agent.images.registry import AuthFile, Credentials, RegistryClient
    from agent.images.registry.endpoint import normalise_registry

    registry = normalise_registry(args.registry)
    user = args.username or input("Username: ").strip()
    if args.password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
    if not user or not password:
        raise CliError("login needs a username and a password")
    creds = Credentials(user, password)
    opts = _options(args)

    async def verify() -> None:  # before saving: a typo must not be stored
        async with RegistryClient(registry, credentials=creds, insecure=opts.insecure,
                                  retry=opts.retry) as client:
            await client.check()

    asyncio.run(verify())
    path = auth_path()
    AuthFile(path).set(registry, creds)
    print(f"Login Succeeded (credentials in {path})")
    return EXIT_OK


def _logout(args: argparse.Namespace) -> int:
    from agent.images.registry import AuthFile
    if AuthFile(auth_path()).remove(args.registry):
        print(f"Removing login credentials for {args.registry}")
    else:
        print(f"Not logged in to {args.registry}")
    return EXIT_OK


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


async def _push(args: argparse.Namespace) -> int:
    from agent.images.registry import BlobEvent, parse_remote, push
    from agent.images.store import ImageStore

    remote = parse_remote(args.ref)
    print(f"The push refers to repository [{remote.name}]", flush=True)

    def show(e: BlobEvent) -> None:
        if e.kind != "layer" or e.action == "pushing":
            return
        what = "Layer already exists" if e.action == "exists" else f"Pushed {_size(e.size)}"
        print(f"{_short(e.digest)}: {what}", flush=True)

    result = await push(ImageStore(store_of(args)), args.ref, _options(args), show)
    print(f"{remote.tag or result.digest}: digest: {result.digest} size: {result.size}")
    return EXIT_OK


async def _pull(args: argparse.Namespace) -> int:
    from agent.images.registry import BlobEvent, parse_remote, pull
    from agent.images.store import ImageStore

    remote = parse_remote(args.ref)
    print(f"{remote.tag or remote.digest}: Pulling from {remote.name}", flush=True)

    def show(e: BlobEvent) -> None:
        if e.kind != "layer" or e.action == "pulling":
            return
        what = "Already exists" if e.action == "exists" else f"Pull complete {_size(e.size)}"
        print(f"{_short(e.digest)}: {what}", flush=True)

    result = await pull(ImageStore(store_of(args)), args.ref, _options(args), show)
    print(f"Digest: {result.digest}")
    print(result.image.ref)
    return EXIT_OK
