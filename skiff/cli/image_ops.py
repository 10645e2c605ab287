"""skiff image history|tag|rm|prune, `skiff tag` and `skiff rmi`: a node's image store.

Like `skiff image import`, these act on a store directly (default: the local agent's,
--store to choose), not through the controller.

`rmi` untags, then collects what no tag reaches any more. The store cannot know which
images the node's containers run, so it does not refuse; what it cannot break is a
running container: garbage collection keeps every unpacked layer that is mounted (an
overlay lower dir), and the blobs of a removed image come back with the next pull.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skiff.cli.context import EXIT_ERROR, EXIT_OK, CliError
from skiff.cli.image_cmds import _size, store_of
from skiff.cli.output import Table

if TYPE_CHECKING:
    from agent.images.models import Image

COMMANDS = ("tag", "rmi")
IMAGE_COMMANDS = ("history", "tag", "rm", "prune")
TRUNC = 45  # docker history's CREATED BY width


def add_parsers(sub: Any, image_sub: Any) -> None:
    """`skiff image history|tag|rm|prune`, and the top-level `tag` and `rmi`."""
    def store_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--store", type=Path, help="image store (default: the local agent's)")

    q = image_sub.add_parser("history", help="an image's layers, newest first")
    q.add_argument("name", metavar="NAME[:TAG]")
    q.add_argument("--no-trunc", action="store_true", help="full digests and instructions")
    q.add_argument("-o", "--output", choices=("json",))
    store_flag(q)
    for parent, name in ((image_sub, "tag"), (sub, "tag")):
        q = parent.add_parser(name, help="add a name to an image on this node")
        q.add_argument("source", metavar="SOURCE[:TAG]")
        q.add_argument("target", metavar="TARGET[:TAG]")
        store_flag(q)
    for parent, name in ((image_sub, "rm"), (sub, "rmi")):
        q = parent.add_parser(name, help="untag images on this node and delete what no "
                                         "tag needs any more")
        q.add_argument("names", nargs="+", metavar="NAME[:TAG]")
        store_flag(q)
    q = image_sub.add_parser("prune", help="delete blobs and unpacked layers no image uses")
    store_flag(q)


def dispatch(args: argparse.Namespace) -> int:
    from agent.images.errors import ImageError

    what = args.command if args.command in COMMANDS else args.image_command
    try:
        if what == "history":
            return _history(args)
        if what == "tag":
            return asyncio.run(_tag(args))
        if what in ("rm", "rmi"):
            return asyncio.run(_rmi(args))
        return asyncio.run(_prune(args))
    except (ImageError, OSError) as exc:
        raise CliError(str(exc)) from None


# ---- history --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryRow:
    layer: str | None  # the layer's blob digest; None for an entry that made no layer
    created: str | None
    created_by: str
    size: int
    comment: str


def history_rows(image: Image) -> list[HistoryRow]:
    """One row per history entry, newest first, each non-empty entry paired with the next
    layer in order (as the OCI spec pairs them). An image without history gets one row
    per layer; entries beyond the layers (a config that lies) show no layer."""
    layers = list(image.layers)
    rows: list[HistoryRow] = []
    if not image.history:
        rows = [HistoryRow(d.digest, image.created, "", d.size, "") for d in layers]
    for h in image.history:
        layer = None if h.empty_layer or not layers else layers.pop(0)
        rows.append(HistoryRow(layer.digest if layer else None, h.created,
                               h.created_by or "", layer.size if layer else 0,
                               h.comment or ""))
    return rows[::-1]


def human_age(created: str | None, now: datetime | None = None) -> str:
    """docker's "3 minutes ago" (go-units HumanDuration)."""
    if not created:
        return "N/A"
    try:
        then = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return "N/A"
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    s = int(((now or datetime.now(UTC)) - then).total_seconds())
    if s < 1:
        return "Less than a second ago"
    minutes, hours = s // 60, s // 3600
    if s < 60:
        text = "1 second" if s == 1 else f"{s} seconds"
    elif minutes == 1:
        text = "About a minute"
    elif minutes < 60:
        text = f"{minutes} minutes"
    elif hours == 1:
        text = "About an hour"
    elif hours < 48:
        text = f"{hours} hours"
    elif hours < 24 * 7 * 2:
        text = f"{hours // 24} days"
    elif hours < 24 * 30 * 2:
        text = f"{hours // 24 // 7} weeks"
    elif hours < 24 * 365 * 2:
        text = f"{hours // 24 // 30} months"
    else:
        text = f"{hours // 24 // 365} years"
    return text + " ago"


def _one_line(text: str, trunc: bool) -> str:
    # Tabs and newlines (a heredoc RUN) would break the table's columns.
    text = " ".join(text.replace("\t", " ").splitlines())
    return text[:TRUNC - 1] + "…" if trunc and len(text) > TRUNC else text


def _resolve_existing(store: Path, name: str) -> Image:
    """The image, without creating a store where there is none (a reader must not)."""
    from agent.images.store import ImageStore

    image = None
    if (store / "index.json").exists():
        image = asyncio.run(ImageStore(store).resolve(name))
    if image is None:
        raise CliError(f"no such image: {name} (in {store})")
    return image


def _history(args: argparse.Namespace) -> int:
    image = _resolve_existing(store_of(args), args.name)
    rows = history_rows(image)
    if args.output == "json":
        json.dump([{"layer": r.layer, "created": r.created, "createdBy": r.created_by,
                    "size": r.size, "comment": r.comment, "emptyLayer": r.layer is None}
                   for r in rows], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    trunc = not args.no_trunc

    def layer_id(digest: str | None) -> str:
        if digest is None:
            return "<missing>"
        return digest.removeprefix("sha256:")[:12] if trunc else digest

    Table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]).print(
        [[layer_id(r.layer), human_age(r.created), _one_line(r.created_by, trunc),
          _size(r.size), _one_line(r.comment, trunc)] for r in rows])
    return EXIT_OK


# ---- tag, rmi, prune ------------------------------------------------------------------------


async def _tag(args: argparse.Namespace) -> int:
    from agent.images.store import ImageStore

    store = store_of(args)
    if not (store / "index.json").exists():
        raise CliError(f"no such image: {args.source} (in {store})")
    try:
        await ImageStore(store).tag(args.source, args.target)
    except LookupError:  # ImageNotFound
        raise CliError(f"no such image: {args.source} (in {store})") from None
    return EXIT_OK


async def _rmi(args: argparse.Namespace) -> int:
    """docker's output: Untagged: REF, then Deleted: ID once nothing else uses it. Each
    name is tried; the exit code says whether any failed."""
    from agent.images.errors import ImageError
    from agent.images.store import ImageStore

    store_root = store_of(args)
    store = ImageStore(store_root)
    failed = False
    for name in args.names:
        try:
            image = await store.resolve(name) if (store_root / "index.json").exists() \
                else None
            if image is None or not await store.remove(name):
                print(f"error: no such image: {name}", file=sys.stderr)
                failed = True
                continue
        except ImageError as exc:
            print(f"error: {name}: {exc}", file=sys.stderr)
            failed = True
            continue
        print(f"Untagged: {image.ref}")
        # remove() collected garbage: the config blob is gone iff no other tag holds it.
        if not store.blob_path(image.id).exists():
            print(f"Deleted: {image.id}")
    return EXIT_ERROR if failed else EXIT_OK


def _disk_usage(paths: list[Path]) -> int:
    """Bytes of file content under `paths` (apparent sizes, as docker reports them;
    directories' own blocks are left out so that the figure matches what was stored)."""
    total = 0
    for top in paths:
        for dirpath, dirnames, filenames in os.walk(top):
            # os.walk lists a symlink to a directory among dirnames, and does not enter it.
            links = [n for n in dirnames if os.path.islink(os.path.join(dirpath, n))]
            for n in filenames + links:
                # Gone while walking (a concurrent gc): it counts for nothing.
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(dirpath, n)).st_size
    return total


async def _prune(args: argparse.Namespace) -> int:
    from agent.images.store import ImageStore

    root = store_of(args)
    if not (root / "index.json").exists():
        print("Total reclaimed space: 0B")
        return EXIT_OK
    store = ImageStore(root)
    # GcResult counts; the space is measured around it (another writer may add meanwhile,
    # so the figure is never below zero, and approximate under concurrent pulls).
    dirs = [store.blobs, store.layers]
    before = await asyncio.to_thread(_disk_usage, dirs)
    result = await store.gc()
    after = await asyncio.to_thread(_disk_usage, dirs)
    print(f"Deleted {result.blobs} blob(s) and {result.layers} unpacked layer(s)")
    print(f"Total reclaimed space: {_size(max(0, before - after))}")
    return EXIT_OK
