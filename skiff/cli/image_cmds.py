"""skiff image import / skiff images (this node's store), and `skiff agent`'s settings."""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

from skiff.cli.context import EXIT_OK, CliError
from skiff.cli.output import Table, age

DEFAULT_STORE = Path("/var/lib/skiff/agent/images")


def store_of(args: argparse.Namespace) -> Path:
    return args.store or Path(os.environ.get("SKIFF_IMAGE_STORE", DEFAULT_STORE))


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def cmd_image(args: argparse.Namespace) -> int:
    from agent.images.cli import cli_import, cli_list
    from agent.images.errors import ImageError

    store = store_of(args)
    try:
        if getattr(args, "image_command", None) == "import":
            print(cli_import(store, args.path, args.ref))
            return EXIT_OK
        rows = [[r["repository"], r["tag"], r["id"].removeprefix("sha256:")[:12],
                 age(r["created"]), _size(r["size"])] for r in cli_list(store)]
    except (ImageError, OSError) as exc:
        raise CliError(str(exc)) from None
    Table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]).print(rows)
    return EXIT_OK


def agent_settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from agent.settings import AgentSettings

    labels = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--label {item!r}: expected KEY=VALUE")
        labels[key] = value
    name = args.name or socket.gethostname()
    return AgentSettings(server=args.server, token=args.token, name=name,
                         state_dir=args.state_dir, address=args.address, port=args.port,
                         labels=labels, subnet=args.subnet, bridge=args.bridge,
                         nft_table=args.bridge, netns_prefix=f"{args.bridge}-",
                         cgroup_parent=f"skiff/{name}", oci_runtime=args.runtime,
                         ifprefix=args.ifprefix, vxlan_port=args.vxlan_port,
                         dns_port=args.dns_port, registry=args.registry,
                         image_gc_unused_for=args.image_gc_unused_for)
