"""Volume and bind-mount checks of an app at apply time, before anything is written:
external volumes must exist, and bind sources must be under the controller's
`allowed_bind_prefixes` (`skiff controller --allowed-bind-prefix`). With no prefixes set
every source is allowed, but binding a host path as sensitive as /etc draws a warning.

Whether a bind source exists, and is a folder or file rather than a device, only its node
can tell: the agent checks that when it starts the task (agent/mounts.py)."""

from __future__ import annotations

import posixpath
from collections.abc import Collection, Sequence

from controller.api.network_checks import Clash
from skiff.models.appspec import AppSpec

SENSITIVE = ("/", "/etc", "/proc", "/sys", "/var/run", "/run", "/dev", "/boot")


def _under(path: str, prefix: str) -> bool:
    prefix = "/" + posixpath.normpath(prefix).strip("/")
    return prefix == "/" or path == prefix or path.startswith(prefix.rstrip("/") + "/")


def sensitive(path: str) -> str | None:
    """The sensitive host folder `path` is or lies in, if any (/ only when it is /)."""
    for top in SENSITIVE:
        if path == top or (top != "/" and _under(path, top)):
            return top
    return None


def volume_problems(app: AppSpec, volumes: Collection[str],
                    allowed_prefixes: Sequence[str]) -> tuple[list[Clash], list[str]]:
    """(refusals, warnings) for `app`, given the names of the stored Volumes."""
    clashes: list[Clash] = []
    warnings: list[str] = []
    for key, spec in sorted(app.volumes.items()):
        if spec.external and spec.name not in volumes:
            clashes.append(Clash(f"volumes.{key}", f"external volume {spec.name} does not "
                                 f"exist (skiff volume create {spec.name})", missing=True))
    for svc, service in sorted(app.services.items()):
        for i, mount in enumerate(service.volumes):
            if mount.type != "bind" or not mount.source:
                continue
            path = f"services.{svc}.volumes[{i}]"
            if allowed_prefixes and not any(_under(mount.source, p)
                                            for p in allowed_prefixes):
                clashes.append(Clash(path, f"bind source {mount.source} is outside the "
                                     "allowed bind prefixes of this cluster: "
                                     f"{', '.join(allowed_prefixes)}", missing=True))
            elif (top := sensitive(mount.source)) is not None:
                where = "the host's root" if top == "/" else f"the host's {top}"
                warnings.append(f"{path}: bind source {mount.source} exposes {where} to "
                                "the container")
    return clashes, warnings
