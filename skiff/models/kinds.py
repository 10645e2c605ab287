"""The kinds of API object: their names, plurals, and whether they belong to an app."""

from __future__ import annotations

from dataclasses import dataclass

from skiff.models.objects import App, Endpoints, Event, Network, Node, Service, Task, Volume


@dataclass(frozen=True)
class Kind:
    name: str  # "Task"
    plural: str  # "tasks": the URL segment and etcd key segment
    cls: type
    namespaced: bool  # named "app/name" rather than "name"
    aliases: tuple[str, ...] = ()


APP = Kind("App", "apps", App, namespaced=False, aliases=("app",))
SERVICE = Kind("Service", "services", Service, namespaced=True, aliases=("service", "svc"))
TASK = Kind("Task", "tasks", Task, namespaced=True, aliases=("task",))
NODE = Kind("Node", "nodes", Node, namespaced=False, aliases=("node", "no"))

NETWORK = Kind("Network", "networks", Network, namespaced=False, aliases=("network", "net"))
ENDPOINTS = Kind("Endpoints", "endpoints", Endpoints, namespaced=True, aliases=("ep",))
VOLUME = Kind("Volume", "volumes", Volume, namespaced=False, aliases=("volume", "vol"))
EVENT = Kind("Event", "events", Event, namespaced=True, aliases=("event", "ev"))

KINDS: tuple[Kind, ...] = (APP, SERVICE, TASK, NODE, NETWORK, ENDPOINTS, VOLUME, EVENT)
_BY_WORD = {w: k for k in KINDS for w in (k.name.lower(), k.plural, *k.aliases)}


class UnknownKind(ValueError):
    pass


def kind_for(word: str) -> Kind:
    """The kind a user or URL names, by singular, plural or short alias."""
    try:
        return _BY_WORD[word.lower()]
    except KeyError:
        known = ", ".join(k.plural for k in KINDS)
        raise UnknownKind(f"unknown kind {word!r} (known: {known})") from None


def kind_of(obj: object) -> Kind:
    for k in KINDS:
        if isinstance(obj, k.cls):
            return k
    raise UnknownKind(f"not an API object: {type(obj).__name__}")
