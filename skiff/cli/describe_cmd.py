"""skiff describe KIND NAME: one object in words, with the tasks behind it."""

from __future__ import annotations

import argparse
from typing import Any

from skiff.cli.columns import TASK_COLUMNS, TASK_WIDE, row
from skiff.cli.context import EXIT_OK, client
from skiff.cli.get_cmd import parse_kind, split_name
from skiff.cli.output import Table, age, dump
from skiff.client.api import ApiClient
from skiff.manifest.networks import requested_subnet
from skiff.models.codec import decode, encode
from skiff.models.kinds import SERVICE, TASK
from skiff.models.objects import CLUSTER_EVENTS, App, Endpoints, Network, Node, Service, Task


def _field(label: str, value: Any, indent: int = 0) -> None:
    print(f"{' ' * indent}{label + ':':<20} {value}")


def _meta(obj: Any) -> None:
    m = obj.metadata
    _field("Name", m.name)
    if m.app:
        _field("App", m.app)
    _field("Labels", ", ".join(f"{k}={v}" for k, v in sorted(m.labels.items())) or "-")
    _field("Created", f"{m.created_at} ({age(m.created_at)} ago)")
    _field("Generation", m.generation)
    _field("ResourceVersion", m.resource_version)


def _tasks_table(tasks: list[Task]) -> None:
    if not tasks:
        print("  (none)")
        return
    cols = TASK_COLUMNS[1:-1] + TASK_WIDE[:2] + TASK_COLUMNS[-1:]
    table = Table([h for h, _ in cols])
    table.print([row(cols, t) for t in sorted(tasks, key=lambda t: (t.spec.service,
                                                                    t.spec.slot))])


def _describe_app(app: App, tasks: list[Task]) -> None:
    _meta(app)
    _field("Observed generation", app.status.observed_generation)
    print("Services:")
    for name, spec in sorted(app.spec.services.items()):
        count = app.status.services.get(name)
        running = count.running if count else 0
        print(f"  {name:<18} {spec.image:<30} {running}/{spec.replicas} running")
    print("Tasks:")
    _tasks_table(tasks)


def _describe_service(svc: Service, tasks: list[Task]) -> None:
    _meta(svc)
    spec = svc.spec
    _field("Image", spec.image)
    _field("Command", " ".join(spec.command) if spec.command else "(image default)")
    if spec.entrypoint:
        _field("Entrypoint", " ".join(spec.entrypoint))
    desired = svc.status.replicas if spec.deploy.mode == "global" else spec.replicas
    _field("Mode", spec.deploy.mode)
    _field("Replicas", f"{svc.status.running} running / {desired} desired "
                       f"({svc.status.pending} pending)")
    _field("Spec hash", spec.container_hash())
    if spec.environment:
        print("Environment:")
        for k, v in sorted(spec.environment.items()):
            print(f"  {k}={v}")
    if spec.ports:
        print("Ports:")
        for p in spec.ports:
            print(f"  {p.published or '-'} -> {p.target}/{p.protocol} ({p.mode})")
    if spec.volumes:
        print("Mounts:")
        for m in spec.volumes:
            print(f"  {m.type} {m.source or '(anonymous)'} -> {m.target}"
                  f"{' (ro)' if m.read_only else ''}")
    print("Networks:", ", ".join(sorted(spec.networks)) or "-")
    print("Tasks:")
    _tasks_table(tasks)


def _describe_task(task: Task) -> None:
    _meta(task)
    _field("Service", task.spec.service)
    _field("Slot", task.spec.slot)
    _field("Node", task.spec.node_name or "(not scheduled)")
    _field("Desired state", task.spec.desired_state)
    _field("State", task.status.state)
    _field("Message", task.status.message or "-")
    _field("Container", task.status.container_id or "-")
    _field("IP", task.status.ip or "-")
    _field("Exit code", "-" if task.status.exit_code is None else task.status.exit_code)
    _field("Restarts", task.status.restarts)
    _field("Image", task.spec.container.image)
    _field("Spec hash", task.spec.spec_hash)


def _describe_node(node: Node) -> None:
    _meta(node)
    _field("Ready", node.status.ready)
    _field("Schedulable", not node.spec.unschedulable)
    _field("Address", node.status.address or "-")
    _field("Capacity", f"{node.status.capacity.cpus:g} CPUs, "
                       f"{node.status.capacity.memory} bytes")
    _field("Last heartbeat", node.status.last_heartbeat or "-")
    _field("Message", node.status.message or "-")


def _describe_network(net: Network, services: list[str]) -> None:
    _meta(net)
    spec, status = net.spec, net.status
    _field("Driver", spec.driver or "overlay (cluster-wide)")
    asked = requested_subnet(spec)
    _field("Subnet", status.subnet or (f"{asked} (requested, not allocated yet)" if asked
                                       else "(not allocated yet)"))
    _field("VNI", status.vni or "-")
    _field("Internal", spec.internal)
    _field("Attachable", spec.attachable)
    _field("Ready", status.ready)
    _field("Message", status.message or "-")
    print("Nodes:")
    if not status.nodes:
        print("  (none)")
    else:
        table = Table(["NODE", "SLICE", "VTEP"])
        table.print([[n, p.subnet, p.vtep] for n, p in sorted(status.nodes.items())])
    print("Services:", ", ".join(services) or "-")


def _describe_endpoints(ep: Endpoints) -> None:
    _meta(ep)
    print("Names:")
    for net, names in sorted(ep.names.items()):
        print(f"  {net}: {', '.join(names)}")
    if ep.ports:
        print("Ports:")
        for p in ep.ports:
            print(f"  {p.published or '-'} -> {p.target}/{p.protocol} ({p.mode})")
    print("Addresses:")
    if not ep.addresses:
        print("  (none)")
        return
    table = Table(["TASK", "NODE", "READY", "ADDRESSES"])
    table.print([[a.task, a.node, "yes" if a.ready else "no",
                  ", ".join(f"{n}={ip}" for n, ip in sorted(a.addresses.items())) or "-"]
                 for a in ep.addresses])


async def cmd_describe(args: argparse.Namespace) -> int:
    kind = parse_kind(args.kind)
    name, app = split_name(kind, args.name)
    async with client(args) as api:
        obj = decode(kind.cls, await api.get(kind, name, app))
        if isinstance(obj, App | Service):
            app_name = obj.metadata.name if isinstance(obj, App) else obj.metadata.app
            filters = {"app": app_name}
            if isinstance(obj, Service):
                filters["service"] = obj.metadata.name
            listed = await api.list(TASK, **filters)
            tasks = [decode(Task, t) for t in listed["items"]]
            if isinstance(obj, App):
                _describe_app(obj, tasks)
            else:
                _describe_service(obj, tasks)
        elif isinstance(obj, Task):
            _describe_task(obj)
            await _events(api, f"task/{obj.metadata.app}/{obj.metadata.name}",
                          obj.metadata.app)
        elif isinstance(obj, Network):
            listed = await api.list(SERVICE)
            users = [f"{s['metadata'].get('app')}/{s['metadata']['name']}"
                     for s in listed["items"] if obj.metadata.name in
                     (s.get("spec") or {}).get("networks", {})]
            _describe_network(obj, users)
        elif isinstance(obj, Endpoints):
            _describe_endpoints(obj)
        elif isinstance(obj, Node):
            _describe_node(obj)
            await _events(api, f"node/{obj.metadata.name}", CLUSTER_EVENTS)
        else:  # volumes, events: every field, as YAML
            dump(encode(obj), "yaml")
    return EXIT_OK


async def _events(api: ApiClient, obj: str, app: str | None) -> None:
    """The object's recent events, as kubectl describe ends with them."""
    from skiff.cli.events_cmd import recent, when
    events = await recent(api, obj, app)
    print("Events:" if events else "Events: none in the last hour")
    for e in events:
        print(f"  {age(when(e)):>6} ago  {e.get('type', 'Normal'):<7}"
              f"  {e['reason']:<16}  {e.get('message', '')}")
