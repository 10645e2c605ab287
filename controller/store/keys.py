"""Where everything lives in etcd: one root, one segment per kind, app before name.

| key                              | holds                                     |
| -------------------------------- | ----------------------------------------- |
| ``/skiff/apps/{name}``           | App (not namespaced)                      |
| ``/skiff/nodes/{name}``          | Node (not namespaced)                     |
| ``/skiff/services/{app}/{name}`` | Service of an app                         |
| ``/skiff/tasks/{app}/{name}``    | Task of an app                            |
| ``/skiff/tokens/{id}``           | API token record (hash, role, name)       |
| ``/skiff/leader``                | identity of the leading controller, lease |
| ``/skiff/ipam/networks``         | subnet and VNI claimed by each network    |
| ``/skiff/volumes/{name}``        | Volume (not namespaced)                   |
| ``/skiff/events/{app}/{name}``   | Event, under a lease (about an hour)      |

Values of object keys are the object's JSON (skiff.models.codec) without
``metadata.resourceVersion``: that is the key's mod_revision. The app segment comes
before the name so that ``kind_prefix(kind, app)`` lists or watches one app's objects
with a single range, and ``kind_prefix(kind)`` all of them.
"""

from __future__ import annotations

from skiff.models.kinds import KINDS, Kind

ROOT = "/skiff/"
TOKENS_PREFIX = ROOT + "tokens/"
LEADER_KEY = ROOT + "leader"
# Per node: the secret the controller presents to that node's agent (never served).
AGENT_SECRETS_PREFIX = ROOT + "agentsecrets/"
# Per node: the id of the token that holds the node's name (one agent per name).
NODE_CLAIMS_PREFIX = ROOT + "nodeclaims/"
# JSON map network -> {subnet, vni}: every network's claim, changed only by compare-and-swap
# (controller/reconcilers/netregistry.py).
IPAM_NETWORKS_KEY = ROOT + "ipam/networks"

MAX_NAME_LENGTH = 253  # a DNS name's limit, as Kubernetes uses for object names

_BY_PLURAL = {k.plural: k for k in KINDS}


def validate_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it can be one key segment, else raise ValueError saying why."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} must be a non-empty string, got {name!r}")
    if "/" in name:
        raise ValueError(f"{what} {name!r} must not contain '/'")
    if ".." in name:
        raise ValueError(f"{what} {name!r} must not contain '..'")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"{what} {name[:20]!r}... is {len(name)} characters; at most {MAX_NAME_LENGTH}")
    return name


def _app_segment(kind: Kind, app: str | None) -> str:
    if kind.namespaced:
        if app is None:
            raise ValueError(f"{kind.plural} belong to an app: the app name is required")
        return validate_name(app, "app name") + "/"
    if app is not None:
        raise ValueError(f"{kind.plural} do not belong to an app (got app {app!r})")
    return ""


def object_key(kind: Kind, name: str, app: str | None = None) -> str:
    """The key of one object: ``/skiff/{plural}/[{app}/]{name}``."""
    return f"{ROOT}{kind.plural}/{_app_segment(kind, app)}{validate_name(name)}"


def kind_prefix(kind: Kind, app: str | None = None) -> str:
    """The prefix (ending in '/') under which all objects of ``kind`` (of ``app``) live."""
    if app is None:
        return f"{ROOT}{kind.plural}/"
    return f"{ROOT}{kind.plural}/{_app_segment(kind, app)}"


def parse_key(key: str) -> tuple[Kind, str | None, str]:
    """Split an object key into (kind, app or None, name); ValueError if it is not one."""
    if not key.startswith(ROOT):
        raise ValueError(f"{key!r} is not under {ROOT}")
    plural, _, rest = key[len(ROOT):].partition("/")
    kind = _BY_PLURAL.get(plural)
    if kind is None:
        raise ValueError(f"{key!r} is not an object key (unknown kind segment {plural!r})")
    parts = rest.split("/")
    if len(parts) != (2 if kind.namespaced else 1):
        shape = "app/name" if kind.namespaced else "name"
        raise ValueError(f"{key!r}: {kind.plural} keys end in {shape}")
    if kind.namespaced:
        return kind, validate_name(parts[0], "app name"), validate_name(parts[1])
    return kind, None, validate_name(parts[0])
