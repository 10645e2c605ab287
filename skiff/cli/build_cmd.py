"""skiff build: pack the context here (no root needed), send it with the Dockerfile
through the controller to one agent, which builds, tags and pushes every tag to the
cluster registry; show the build as it streams back.

Everything that can be checked here is, before a byte is sent: the Dockerfile exists and
parses, the tags are image names, the context is within its size limit after
.dockerignore. The same path serves `skiff apply` for services with `build:`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skiff.build import (
    BuildError,
    ContextListing,
    ContextStream,
    parse_dockerfile,
    scan_context,
)
from skiff.build.errors import format_size
from skiff.build.events import BuildEvent
from skiff.build.ignore import load_ignore
from skiff.cli.build_progress import BuildProgress, make_progress
from skiff.cli.context import EXIT_OK, CliError, client

MAX_DOCKERFILE_BYTES = 512 * 1024


@dataclass(frozen=True)
class BuildInput:
    context: Path
    dockerfile: str  # its text
    dockerfile_name: str  # as shown in messages
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False

    def options(self) -> dict[str, Any]:
        return {"dockerfile": self.dockerfile, "dockerfileName": self.dockerfile_name,
                "tags": self.tags, "buildArgs": self.build_args, "target": self.target,
                "noCache": self.no_cache}


def add_parser(sub: Any, client_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("build", help="build an image from a Dockerfile on the cluster and "
                                     "push it to the cluster registry")
    p.add_argument("context", metavar="CONTEXT", type=Path, help="the build context folder")
    p.add_argument("-t", "--tag", action="append", default=[], metavar="NAME[:TAG]",
                   help="name the image (repeatable); every name is pushed")
    p.add_argument("-f", "--file", metavar="FILE",
                   help="the Dockerfile (default: CONTEXT/Dockerfile; - reads stdin)")
    p.add_argument("--build-arg", action="append", default=[], metavar="K=V",
                   help="set an ARG (K alone: from this environment)")
    p.add_argument("--target", metavar="STAGE", help="build this stage (by its AS name)")
    p.add_argument("--no-cache", action="store_true", help="run every step again")
    p.add_argument("--progress", choices=("auto", "plain", "tty"), default="auto")
    p.add_argument("--node", help="build on this node (default: the node that built this "
                                  "image name last, for its layer cache)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print only the image digest")
    client_flags(p)


def parse_build_args(items: Sequence[str], env: Mapping[str, str]) -> dict[str, str]:
    """docker's --build-arg: `K=V`, or `K` for the value in the environment (left out
    when unset)."""
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key:
            raise CliError(f"--build-arg {item!r}: expected NAME=value")
        if eq:
            out[key] = value
        elif key in env:
            out[key] = env[key]
    return out


def _check_tags(tags: Sequence[str]) -> None:
    from agent.images.errors import InvalidReference
    from agent.images.refs import parse_ref
    for tag in tags:
        try:
            ref = parse_ref(tag)
        except InvalidReference as exc:
            raise CliError(f"-t {tag}: {exc}") from None
        if ref.digest is not None:
            raise CliError(f"-t {tag}: a tag may not carry a digest")


def read_dockerfile(context: Path, file: str | None) -> tuple[str, str, Path | None]:
    """(text, name for messages, path or None for stdin). docker's rule: -f is relative
    to the current directory; without it, CONTEXT/Dockerfile."""
    if file == "-":
        return sys.stdin.read(MAX_DOCKERFILE_BYTES + 1), "Dockerfile", None
    path = Path(file) if file else context / "Dockerfile"
    try:
        if path.stat().st_size > MAX_DOCKERFILE_BYTES:
            raise CliError(f"{path}: a Dockerfile over {format_size(MAX_DOCKERFILE_BYTES)} "
                           "is not supported")
        return path.read_text(encoding="utf-8"), path.name, path
    except FileNotFoundError:
        raise CliError(f"no Dockerfile at {path} (use -f to name one)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read the Dockerfile {path}: {exc}") from None


def prepare(context: Path, file: str | None, tags: Sequence[str],
            build_args: Mapping[str, str], target: str | None,
            no_cache: bool) -> tuple[BuildInput, ContextListing]:
    """Every local check, then the build's input and the context to send."""
    if not context.is_dir():
        raise CliError(f"build context {context} is not a directory")
    text, name, path = read_dockerfile(context, file)
    if len(text.encode()) > MAX_DOCKERFILE_BYTES:
        raise CliError(f"the Dockerfile exceeds {format_size(MAX_DOCKERFILE_BYTES)}")
    _check_tags(tags)
    try:
        parse_dockerfile(text, name)  # syntax errors name the line, before any upload
        listing = scan_context(context, load_ignore(context, path))
    except BuildError as exc:
        raise CliError(str(exc)) from None
    return BuildInput(context, text, name, list(tags), dict(build_args), target,
                      no_cache), listing


async def _context_chunks(listing: ContextListing,
                          failure: list[BaseException]) -> AsyncIterator[bytes]:
    """The tar, read in a thread chunk by chunk, so the loop keeps serving the upload.
    A file that changed under us is kept in `failure` for a clear message."""
    chunks = iter(ContextStream(listing))
    while True:
        try:
            chunk = await asyncio.to_thread(next, chunks, None)
        except BuildError as exc:
            failure.append(exc)
            raise
        if chunk is None:
            return
        yield chunk


async def run_build(api: Any, build: BuildInput, listing: ContextListing,
                    progress: BuildProgress, node: str | None = None) -> dict[str, Any]:
    """The build's result (image, digest, node, tags, pushed, steps); CliError with the
    agent's message if it failed."""
    failure: list[BaseException] = []
    result: dict[str, Any] | None = None
    image = build.tags[0] if build.tags else None
    try:
        async for line in api.build(build.options(), _context_chunks(listing, failure),
                                    image=image, node=node):
            if "event" in line:
                try:
                    progress.event(BuildEvent.from_wire(line["event"]))
                except ValueError:
                    continue  # an event from a newer agent: not worth failing the build
            elif "status" in line:
                progress.status(str(line["status"]))
            elif "error" in line:
                raise CliError(str(line["error"].get("message", line["error"])))
            elif "result" in line:
                result = line["result"]
    except Exception:
        if failure:
            raise CliError(str(failure[0])) from None
        raise
    finally:
        progress.close()
    if result is None:
        raise CliError("the build ended without a result (the agent may have stopped)")
    return result


async def cmd_build(args: argparse.Namespace) -> int:
    build, listing = prepare(args.context, args.file, args.tag,
                             parse_build_args(args.build_arg, os.environ), args.target,
                             args.no_cache)
    if listing.skipped:
        print(f"warning: not sent (not a file, folder or symlink): "
              f"{', '.join(listing.skipped[:5])}", file=sys.stderr)
    progress = make_progress("plain" if args.quiet else args.progress)
    if args.quiet:
        progress = _Silent()
    async with client(args) as api:
        result = await run_build(api, build, listing, progress, args.node)
    if args.quiet:
        print(result["digest"])
        return EXIT_OK
    print_result(result)
    return EXIT_OK


def print_result(result: Mapping[str, Any]) -> None:
    for warning in result.get("warnings", []):
        print(f"warning: {warning}")
    print(f"Successfully built {result['digest']} on node {result['node']}")
    for tag in result.get("tags", []):
        print(f"Successfully tagged {tag}")
    for remote in result.get("pushed", []):
        print(f"Pushed {remote}")
    if result.get("tags") and not result.get("pushed"):
        print(f"warning: no cluster registry: the image is only on node {result['node']}")


class _Silent:
    def status(self, text: str) -> None:
        pass

    def event(self, event: BuildEvent) -> None:
        pass

    def close(self) -> None:
        pass
