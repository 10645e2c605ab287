"""App → Networks: which Network objects an app's compose networks ask for, as a pure plan.

Every non-external network of an app becomes a cluster Network named by its cluster name
(``todo_default``, or its ``name:``), owned by the app. A network of that name that the
app does not own (made by ``skiff network create``, or by another app) is used as it is
and never changed or deleted by this app. An owned network the app no longer wants goes
only once no task refers to it, so replicas still running on it keep their network
until they are stopped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from skiff.models.objects import App, Network, ObjectMeta


@dataclass(frozen=True)
class NetworkPlan:
    create: list[Network] = field(default_factory=list)
    update: list[Network] = field(default_factory=list)
    delete: list[Network] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


def desired_networks(app: App) -> dict[str, Network]:
    """The Networks ``app`` owns, by cluster name (two compose keys naming one network:
    the first key's settings win)."""
    out: dict[str, Network] = {}
    for key in sorted(app.spec.networks):
        spec = app.spec.networks[key]
        if spec.external or spec.name in out:
            continue
        name = app.metadata.name
        out[spec.name] = Network(
            metadata=ObjectMeta(name=spec.name, app=name, owner_uid=app.metadata.uid,
                                labels={"skiff.app": name}),
            spec=spec)
    return out


def plan_networks(app_name: str, app: App | None, existing: Mapping[str, Network],
                  in_use: Callable[[str], bool]) -> NetworkPlan:
    """Networks to create, update (spec changed: generation + 1; or adopted by a new
    instance of the app) and delete (owned, unwanted, and ``in_use`` says no task refers
    to it).

    ``existing``: by name, every Network the app wants plus every one it owns
    (``metadata.app == app_name``). ``app`` None: the app is gone.
    """
    want = desired_networks(app) if app is not None else {}
    create, update, delete = [], [], []
    for name, net in want.items():
        have = existing.get(name)
        if have is None:
            create.append(net)
        elif have.metadata.app != app_name:
            continue  # not ours: used, never changed
        elif (have.spec, have.metadata.owner_uid, have.metadata.labels) != \
                (net.spec, net.metadata.owner_uid, net.metadata.labels):
            # A recreated app adopts its networks rather than replacing them: their
            # subnets, and the replicas on them, stay as they are.
            meta = dataclasses.replace(
                have.metadata, owner_uid=net.metadata.owner_uid, labels=net.metadata.labels,
                generation=have.metadata.generation + (have.spec != net.spec))
            update.append(dataclasses.replace(have, metadata=meta, spec=net.spec))
    for name in sorted(existing):
        have = existing[name]
        if have.metadata.app == app_name and name not in want and not in_use(name):
            delete.append(have)
    return NetworkPlan(create=create, update=update, delete=delete)
