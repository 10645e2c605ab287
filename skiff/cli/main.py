"""The `skiff` command: parse arguments, run one command, map errors to exit codes."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from skiff import __version__
from skiff.cli import (
    build_cmd,
    builder_cmds,
    compose_cmds,
    events_cmd,
    image_ops,
    lab,
    network_cmds,
    registry_cmds,
    rollout_cmds,
    run_cmds,
    status_cmd,
    volume_cmds,
)
from skiff.cli.context import EXIT_ERROR, EXIT_OK, EXIT_USAGE, CliError
from skiff.client.api import ApiError
from skiff.client.config import ConfigError


def _host_port(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    try:
        return (host if sep and host else default_host), int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}") from None


def _endpoints(text: str) -> list[tuple[str, int]]:
    return [_host_port(part.strip()) for part in text.split(",") if part.strip()]


def _client_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", help="controller URL (default: from the config file)")
    p.add_argument("--token", help="API token (default: from the config file)")
    p.add_argument("--config", help="CLI config file (default: $SKIFF_CONFIG or "
                                    "~/.config/skiff/config)")


def _manifest_flags(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("-f", "--file", action="append", required=required, metavar="FILE",
                   help="compose file (- for stdin); several are merged in order, as "
                        "docker compose merges them")
    p.add_argument("-p", "--project-name", help="app name (default: the file's name key, "
                                                "else its folder)")
    p.add_argument("--strict", action="store_true",
                   help="compose keys skiff does not implement are errors, not warnings")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skiff", description="A small Kubernetes that "
                                     "speaks Docker Compose.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("apply", help="create or update an app from a compose file")
    _manifest_flags(p)
    _client_flags(p)
    p.add_argument("--dry-run", action="store_true", help="show what would change")
    p.add_argument("-v", "--verbose", action="store_true", help="list field changes")
    p.add_argument("--progress", choices=("auto", "plain", "tty"), default="auto",
                   help="how builds of services with `build:` are shown")
    p.add_argument("--no-cache", action="store_true",
                   help="build services with `build:` without the layer cache")
    p.add_argument("--wait", action="store_true",
                   help="wait until every changed service has rolled out; exit 1 naming "
                        "the failing replicas if a rollout pauses or rolls back")
    p.add_argument("--timeout", type=float, default=300.0, help="for --wait (seconds)")

    p = sub.add_parser("config", help="validate a compose file and print it normalised")
    _manifest_flags(p)
    p.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    p.add_argument("-q", "--quiet", action="store_true", help="only validate")

    p = sub.add_parser("get", help="list objects: apps, services, tasks, nodes, networks, "
                                   "endpoints")
    p.add_argument("kind")
    p.add_argument("name", nargs="?", help="NAME, or APP/NAME for services and tasks")
    p.add_argument("--app", help="only objects of this app")
    p.add_argument("-o", "--output", choices=("json", "yaml", "wide", "name"))
    p.add_argument("-w", "--watch", action="store_true", help="then stream changes")
    _client_flags(p)

    p = sub.add_parser("describe", help="show one object in detail")
    p.add_argument("kind")
    p.add_argument("name")
    _client_flags(p)

    p = sub.add_parser("delete", help="delete an app (or a task, or a node)")
    p.add_argument("kind", nargs="?")
    p.add_argument("name", nargs="?")
    _manifest_flags(p, required=False)
    _client_flags(p)
    p.add_argument("--wait", action=argparse.BooleanOptionalAction, default=True,
                   help="wait until the app's services and tasks are gone (default)")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--ignore-not-found", action="store_true")
    p.add_argument("-v", "--volumes", action="store_true",
                   help="also remove the app's volumes and their data, once its tasks are "
                        "gone (as docker compose down -v); kept otherwise")

    p = sub.add_parser("logs", help="a service's or task's output")
    p.add_argument("target", metavar="APP/SERVICE|APP/TASK")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("--tail", type=int, help="only the last N lines of each task")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("--no-prefix", action="store_true", help="no task name before each line")
    _client_flags(p)

    p = sub.add_parser("exec", help="run a command in a task's container")
    p.add_argument("target", metavar="APP/TASK|APP/SERVICE")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD")
    p.add_argument("--timeout", type=float, default=60.0)
    _client_flags(p)

    p = sub.add_parser("image", help="images on this node: import, ls, history, tag, rm, "
                                     "prune")
    image_sub = p.add_subparsers(dest="image_command", metavar="COMMAND")
    image_sub.required = True
    q = image_sub.add_parser("import", help="import an OCI layout, OCI archive or rootfs")
    q.add_argument("path", type=Path)
    q.add_argument("ref", metavar="NAME[:TAG]")
    q.add_argument("--store", type=Path, help="image store (default: the local agent's)")
    q = image_sub.add_parser("ls", help="list images on this node")
    q.add_argument("--store", type=Path)
    p = sub.add_parser("images", help="list images on this node")
    p.add_argument("--store", type=Path)
    image_ops.add_parsers(sub, image_sub)
    registry_cmds.add_parser(sub)
    build_cmd.add_parser(sub, _client_flags)
    builder_cmds.add_parser(sub)

    p = sub.add_parser("agent", help="run a node agent (as root)")
    p.add_argument("--join", "--server", dest="server", required=True, metavar="URL",
                   help="the controller to join")
    p.add_argument("--token", required=True,
                   help="a join token (`skiff token create`); the node then keeps a "
                        "credential of its own in its state dir")
    p.add_argument("--name", help="node name (default: the hostname)")
    p.add_argument("--state-dir", type=Path, default=Path("/var/lib/skiff/agent"))
    p.add_argument("--address", default="127.0.0.1",
                   help="this node's address, where the controller reaches the agent")
    p.add_argument("--port", type=int, default=7481)
    p.add_argument("--label", action="append", default=[], metavar="K=V")
    p.add_argument("--subnet", default="10.88.0.0/24", help="this node's container range")
    p.add_argument("--bridge", default="skiff0", help="this node's bridge (and nft table)")
    p.add_argument("--ifprefix", default="sk", help="prefix of the cluster networks' "
                   "bridges, VXLAN devices and veths on this node (1-6 letters/digits)")
    p.add_argument("--vxlan-port", type=int, default=4789, help="UDP port of the overlay")
    p.add_argument("--dns-port", type=int, default=53,
                   help="port of the node's DNS server on each network's gateway")
    p.add_argument("--registry", default="", metavar="HOST:PORT",
                   help="the cluster registry (plain HTTP): bare image names not on this "
                        "node are pulled from there")
    p.add_argument("--runtime", default="runc", help="OCI runtime binary (runc, crun)")
    p.add_argument("--image-gc-unused-for", type=float, default=3600.0, metavar="SECONDS",
                   help="remove pulled images no task here used for this long (0: never)")

    p = sub.add_parser("node", help="the cluster's nodes")
    node_sub = p.add_subparsers(dest="node_command", metavar="COMMAND")
    node_sub.required = True
    q = node_sub.add_parser("ls", help="list nodes")
    _client_flags(q)
    for verb, text in (("inspect", "one node as JSON"), ("drain", "move its tasks away, "
                       "one at a time, and take no new ones"), ("pause", "take no new "
                       "tasks"), ("activate", "take tasks again")):
        q = node_sub.add_parser(verb, help=text)
        q.add_argument("name")
        _client_flags(q)
    q = node_sub.add_parser("label", help="add (K=V) or remove (K-) labels")
    q.add_argument("name")
    q.add_argument("labels", nargs="+", metavar="K=V|K-")
    _client_flags(q)
    q = node_sub.add_parser("rm", help="remove a node and revoke its credentials")
    q.add_argument("name")
    q.add_argument("-f", "--force", action="store_true", help="even if it is up")
    _client_flags(q)

    network_cmds.add_parser(sub, _client_flags)
    volume_cmds.add_parser(sub, _client_flags)
    compose_cmds.add_parser(sub, _client_flags)
    run_cmds.add_parsers(sub, _client_flags)
    events_cmd.add_parser(sub, _client_flags)
    rollout_cmds.add_parser(sub, _client_flags)
    status_cmd.add_parser(sub, _client_flags)

    p = sub.add_parser("token", help="join tokens for new nodes")
    token_sub = p.add_subparsers(dest="token_command", metavar="COMMAND")
    token_sub.required = True
    q = token_sub.add_parser("create", help="make a join token")
    q.add_argument("--ttl", default="24h", help="how long it is valid (e.g. 30m, 24h; "
                                                "0 = forever)")
    _client_flags(q)

    p = sub.add_parser("version", help="client and server versions")
    _client_flags(p)

    p = sub.add_parser("up", help="start etcd, a controller, the registry and an agent "
                                  "on this machine")
    p.add_argument("--state-dir", type=Path)
    p.add_argument("--etcd-port", type=int, default=12379)
    p.add_argument("--port", type=int, default=7480)
    p.add_argument("--config", help="where to write the CLI config")
    p.add_argument("--agent-port", type=int, default=7481)
    p.add_argument("--node-name", help="the local node's name (default: the hostname)")
    p.add_argument("--subnet", default="10.88.0.0/24", help="the node's container range")
    p.add_argument("--bridge", default="skiff0", help="the node's bridge (and nft table)")
    p.add_argument("--registry-port", type=int, default=5000,
                   help="the cluster registry's port on 127.0.0.1")

    p = sub.add_parser("down", help="stop what `skiff up` started")
    p.add_argument("--state-dir", type=Path)
    p.add_argument("--purge", action="store_true", help="also delete all stored state")

    p = sub.add_parser("controller", help="run the controller (API server, reconcilers)")
    p.add_argument("--etcd", type=_endpoints, default=[("127.0.0.1", 2379)],
                   metavar="HOST:PORT[,HOST:PORT...]", help="etcd, or its members")
    p.add_argument("--listen", type=_host_port, default=("127.0.0.1", 7480),
                   metavar="HOST:PORT")
    p.add_argument("--state-dir", type=Path, default=Path("/var/lib/skiff/controller"))
    p.add_argument("--node-grace", type=float, default=10.0, metavar="SECONDS",
                   help="a node silent this long is Down and its tasks move")
    p.add_argument("--scheduler", choices=("default", "round-robin"), default="default",
                   help="round-robin: no rules at all (a benchmark baseline)")
    p.add_argument("--client-config", type=Path,
                   help="write a CLI config here when the admin token is first made")
    p.add_argument("--allowed-bind-prefix", action="append", default=[], metavar="PATH",
                   help="bind mounts may only come from under these host folders "
                        "(repeatable; default: anywhere)")
    lab.add_parser(sub)
    return parser


def _run_async(fn: Callable[[argparse.Namespace], Any], args: argparse.Namespace) -> int:
    return asyncio.run(fn(args))


def dispatch(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "apply":
        from skiff.cli.apply_cmd import cmd_apply
        return _run_async(cmd_apply, args)
    if cmd == "config":
        from skiff.cli.apply_cmd import cmd_config
        return cmd_config(args)
    if cmd == "get":
        from skiff.cli.get_cmd import cmd_get
        return _run_async(cmd_get, args)
    if cmd == "describe":
        from skiff.cli.describe_cmd import cmd_describe
        return _run_async(cmd_describe, args)
    if cmd == "delete":
        from skiff.cli.delete_cmd import cmd_delete
        return _run_async(cmd_delete, args)
    if cmd == "version":
        return _run_async(_version, args)
    if cmd == "node":
        from skiff.cli.node_cmds import cmd_node
        return _run_async(cmd_node, args)
    if cmd == "network":
        return _run_async(network_cmds.cmd_network, args)
    if cmd == "volume":
        return _run_async(volume_cmds.cmd_volume, args)
    if cmd == "compose":
        return _run_async(compose_cmds.cmd_compose, args)
    if cmd == "status":
        return _run_async(status_cmd.cmd_status, args)
    if cmd == "rollout":
        return _run_async(rollout_cmds.cmd_rollout, args)
    if cmd == "events":
        return _run_async(events_cmd.cmd_events, args)
    if cmd == "run":
        return _run_async(run_cmds.cmd_run, args)
    if cmd == "ps":
        return _run_async(run_cmds.cmd_ps, args)
    if cmd in ("stop", "start"):
        return _run_async(run_cmds.cmd_stop_start, args)
    if cmd == "rm":
        return _run_async(run_cmds.cmd_rm, args)
    if cmd == "build":
        return _run_async(build_cmd.cmd_build, args)
    if cmd == "builder":
        return builder_cmds.cmd_builder(args)
    if cmd == "token":
        return _run_async(_token_create, args)
    if cmd == "logs":
        from skiff.cli.task_cmds import cmd_logs
        return _run_async(cmd_logs, args)
    if cmd == "exec":
        from skiff.cli.task_cmds import cmd_exec
        return _run_async(cmd_exec, args)
    if cmd in image_ops.COMMANDS or getattr(args, "image_command", "") in \
            image_ops.IMAGE_COMMANDS:
        return image_ops.dispatch(args)
    if cmd in ("image", "images"):
        from skiff.cli.image_cmds import cmd_image
        return cmd_image(args)
    if cmd in registry_cmds.COMMANDS:
        return registry_cmds.dispatch(args)
    if cmd == "agent":
        from agent.main import run as run_agent
        from skiff.cli.image_cmds import agent_settings
        run_agent(agent_settings(args))
        return EXIT_OK
    if cmd in ("up", "down"):
        from skiff.cli import localcluster
        from skiff.client.config import default_config_path
        state = args.state_dir or localcluster.default_state_dir()
        if cmd == "up":
            config = Path(args.config) if args.config else default_config_path()
            node = localcluster.NodeOptions(args.agent_port, args.node_name or "",
                                            args.subnet, args.bridge)
            print(localcluster.up(state, args.etcd_port, args.port, config, node,
                                  args.registry_port))
        else:
            print(localcluster.down(state, purge=args.purge))
        return EXIT_OK
    if cmd == "controller":
        from controller.main import ControllerSettings, run
        run(ControllerSettings(
            etcd_host=args.etcd[0][0], etcd_port=args.etcd[0][1],
            etcd_endpoints=tuple(args.etcd),
            listen_host=args.listen[0], listen_port=args.listen[1],
            state_dir=args.state_dir, client_config=args.client_config,
            node_grace=args.node_grace, scheduler=args.scheduler,
            allowed_bind_prefixes=tuple(args.allowed_bind_prefix)))
        return EXIT_OK
    if cmd == "lab":
        return lab.dispatch(args)
    raise CliError(f"unknown command {cmd!r}", EXIT_USAGE)


async def _token_create(args: argparse.Namespace) -> int:
    from skiff.cli.context import client
    from skiff.manifest import parse_duration
    try:
        seconds = parse_duration(args.ttl)
    except ValueError as exc:
        raise CliError(f"--ttl {args.ttl!r}: {exc}") from None
    async with client(args) as api:
        answer = await api.create_join_token(int(seconds) if seconds else None)
    print(answer["token"])
    if answer.get("expiresAt"):
        print(f"valid until {answer['expiresAt']}", file=sys.stderr)
    return EXIT_OK


async def _version(args: argparse.Namespace) -> int:
    from skiff.cli.context import client
    print(f"client: skiff {__version__}")
    async with client(args) as api:
        info = await api.version()
    print(f"server: skiff {info['version']} ({info['api']})")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return dispatch(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except ApiError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
