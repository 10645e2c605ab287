"""AppSpec → a compose document (long syntax, defaults left out).

What `skiff config` prints and what the CLI sends to the server; loading it again gives
an equal AppSpec (a property test holds this).
"""

from __future__ import annotations

from typing import Any

from skiff.manifest.placement import compose_constraints
from skiff.models.appspec import AppSpec, ServiceSpec
from skiff.models.codec import encode


def _prune(value: Any) -> Any:
    """Drop None, False, empty lists and empty mappings: the defaults."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            v = _prune(v)
            if v is None or v is False or v == [] or v == {}:
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def _service(spec: ServiceSpec) -> dict[str, Any]:
    out = _prune(encode(spec))
    # An empty command or entrypoint overrides the image's, unlike a missing one.
    for key in ("command", "entrypoint"):
        if getattr(spec, key) == []:
            out[key] = []
    # A network with no options is still a network the service is on.
    out["networks"] = {name: _prune(encode(net)) or None
                       for name, net in spec.networks.items()}
    deploy = out.get("deploy", {})
    if spec.deploy.mode == "replicated":
        deploy.pop("mode", None)  # the default
        deploy = {"replicas": spec.deploy.replicas, **deploy}
    else:
        deploy.pop("replicas", None)  # meaningless, and refused, in global mode
    if spec.deploy.placement.constraints:
        deploy["placement"]["constraints"] = compose_constraints(
            spec.deploy.placement.constraints)
    out["deploy"] = deploy
    out.pop("restart_max_retries", None)
    if spec.restart_max_retries is not None:
        out["restart"] = f"{spec.restart}:{spec.restart_max_retries}"
    for mount, raw in zip(spec.volumes, out.get("volumes", []), strict=True):
        if mount.tmpfs and mount.tmpfs.mode is not None:
            raw["tmpfs"]["mode"] = format(mount.tmpfs.mode, "o")  # octal, as chmod reads it
    if spec.depends_on:  # compose's long form
        out["depends_on"] = {dep: {"condition": cond} for dep, cond in spec.depends_on.items()}
    if "build" in out:  # beside the image it names, where compose files keep it
        out = {"image": out.pop("image"), "build": out.pop("build"), **out}
    return out


def to_compose(app: AppSpec) -> dict[str, Any]:
    """The compose document of ``app``; ``load_document(to_compose(app)).app == app``."""
    doc: dict[str, Any] = {"name": app.name,
                           "services": {n: _service(s) for n, s in app.services.items()}}
    if app.networks:
        doc["networks"] = {k: _prune(encode(v)) for k, v in app.networks.items()}
    if app.volumes:
        doc["volumes"] = {k: _prune(encode(v)) for k, v in app.volumes.items()}
    return doc


def escape_interpolation(value: Any) -> Any:
    """``$`` → ``$$`` in every string, so printed output loads back unchanged (as
    `docker compose config` does)."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: escape_interpolation(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_interpolation(v) for v in value]
    return value
