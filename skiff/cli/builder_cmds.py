"""skiff builder prune: empty a node's layer cache (agent/build/cache.py), like `docker
builder prune`. It acts on a store directly (default: the local agent's, --store to
choose), as `skiff image prune` does."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from skiff.cli.context import EXIT_OK, CliError
from skiff.cli.image_cmds import _size, store_of


def add_parser(sub: Any) -> None:
    p = sub.add_parser("builder", help="the build cache on this node")
    builder_sub = p.add_subparsers(dest="builder_command", metavar="COMMAND")
    builder_sub.required = True
    q = builder_sub.add_parser("prune", help="remove build cache")
    q.add_argument("--store", type=Path, help="image store (default: the local agent's)")
    q.add_argument("--until", metavar="DURATION",
                   help="only cache unused for this long (e.g. 24h, 30m)")
    q.add_argument("-f", "--force", action="store_true", help="do not ask")


def cmd_builder(args: argparse.Namespace) -> int:
    from agent.build.cache import BuildCache
    from skiff.manifest.units import parse_duration

    try:
        unused_for = parse_duration(args.until) if args.until else None
    except ValueError as exc:
        raise CliError(f"--until {args.until}: {exc}") from None
    root = store_of(args)
    cache = BuildCache(root)
    if not cache.entries.is_dir():
        print("Total reclaimed space: 0B")
        return EXIT_OK
    if not args.force and sys.stdin.isatty():
        what = "all build cache" if unused_for is None else f"build cache unused for " \
                                                              f"{args.until}"
        answer = input(f"WARNING! This will remove {what} in {root}. Are you sure you "
                       "want to continue? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return EXIT_OK
    try:
        result = asyncio.run(asyncio.to_thread(cache.prune, unused_for))
    except OSError as exc:
        raise CliError(f"cannot prune the build cache in {root}: {exc}") from None
    print(f"Deleted {result.entries_removed} cache entries and {result.blobs_removed} "
          f"layer blob(s); {result.entries_kept} entries kept")
    print(f"Total reclaimed space: {_size(result.bytes_freed)}")
    return EXIT_OK
