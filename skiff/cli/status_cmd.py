"""skiff status [APP]: one screen per app: each service's replicas (desired, running,
healthy), its rollout, and the problems first (pending reasons, failing replicas)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from skiff.cli.context import EXIT_OK, client
from skiff.cli.output import Table
from skiff.models.kinds import APP, SERVICE, TASK

ENDED = {"failed", "complete", "shutdown", "rejected", "orphaned"}


def add_parser(sub: Any, client_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("status", help="apps at a glance: replicas, rollouts, problems")
    p.add_argument("app", nargs="?", help="one app (default: all)")
    client_flags(p)


def problems(tasks: list[dict[str, Any]]) -> list[str]:
    """What needs a look, most telling first: failing replicas, then pending ones."""
    out = []
    for t in tasks:
        status, spec = t["status"], t["spec"]
        if spec.get("desiredState") != "running":
            continue
        name = f"{t['metadata'].get('app')}/{t['metadata']['name']}"
        if status["state"] == "failed" or status.get("health") == "unhealthy":
            out.insert(0, f"{name}: {status['state']}"
                          f"{' (unhealthy)' if status.get('health') == 'unhealthy' else ''}: "
                          f"{status.get('message', '')}")
        elif status.get("restarts", 0) > 0 and status["state"] != "running":
            out.insert(0, f"{name}: restarted {status['restarts']}x: "
                          f"{status.get('message', '')}")
        elif status["state"] == "pending":
            out.append(f"{name}: pending: {status.get('message', '')}")
    return out


def service_row(svc: dict[str, Any], tasks: list[dict[str, Any]]) -> list[str]:
    live = [t for t in tasks if t["spec"].get("desiredState") == "running"]
    running = [t for t in live if t["status"]["state"] == "running"]
    healthy = [t for t in running if t["status"].get("health") == "healthy"]
    checked = any(t["status"].get("health") for t in running)
    deploy = svc["spec"].get("deploy", {})
    desired = str(deploy.get("replicas", 1)) if deploy.get("mode") != "global" else "global"
    rollout = svc.get("status", {}).get("rollout", {})
    state = rollout.get("state") or "-"
    return [f"{svc['metadata']['app']}/{svc['metadata']['name']}", desired,
            str(len(running)), str(len(healthy)) if checked else "-", state,
            rollout.get("message", "")[:80]]


async def cmd_status(args: argparse.Namespace) -> int:
    async with client(args) as api:
        apps = [args.app] if args.app else sorted(
            a["metadata"]["name"] for a in (await api.list(APP))["items"])
        rows, issues = [], []
        for app in apps:
            services = (await api.list(SERVICE, app=app))["items"]
            tasks = (await api.list(TASK, app=app))["items"]
            issues += problems(tasks)
            for svc in sorted(services, key=lambda s: s["metadata"]["name"]):
                mine = [t for t in tasks if t["spec"]["service"] == svc["metadata"]["name"]]
                rows.append(service_row(svc, mine))
    if issues:
        print("Problems:")
        for line in issues[:20]:
            print(f"  {line}")
        print()
    if rows:
        Table(["SERVICE", "DESIRED", "RUNNING", "HEALTHY", "ROLLOUT", "MESSAGE"]).print(rows)
    else:
        print("No apps." if not args.app else f"app/{args.app} has no services")
    return EXIT_OK
