"""Where a reference lives: which registry, which repository there, and the base URL
(http for the insecure list, https otherwise).

The store keeps Docker Hub names short (`busybox`, `user/app`: see refs.py); here they
map back to `registry-1.docker.io` and `library/busybox`.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass

from agent.images.refs import DEFAULT_TAG, parse_ref, split_domain

DOCKER_HUB = "docker.io"
_HUB_API = "registry-1.docker.io"
# Plain HTTP is only ever used for these (and what the caller adds, e.g. the cluster
# registry): loopback cannot be intercepted off the machine.
DEFAULT_INSECURE = ("localhost", "127.0.0.0/8", "::1")
INSECURE_ENV = "SKIFF_INSECURE_REGISTRIES"


@dataclass(frozen=True)
class RemoteRef:
    registry: str          # host[:port] as written; "docker.io" for Docker Hub
    repository: str        # the path within the registry: "library/busybox", "team/app"
    tag: str | None
    digest: str | None
    name: str              # the store's normalised name ("127.0.0.1:5000/app", "busybox")

    @property
    def reference(self) -> str:
        """What goes after /manifests/: the digest when given (it pins content), else
        the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def local(self) -> str:
        """The store reference a pull tags: `name:tag`, or `name@digest` without a tag."""
        if self.tag is None and self.digest is not None:
            return f"{self.name}@{self.digest}"
        out = f"{self.name}:{self.tag or DEFAULT_TAG}"
        return f"{out}@{self.digest}" if self.digest else out

    def __str__(self) -> str:
        return self.local


def parse_remote(text: str) -> RemoteRef:
    """`registry/repo[:tag][@digest]` (refs.py grammar); raises InvalidReference."""
    r = parse_ref(text)
    domain, path = split_domain(r.name)
    if domain is None:
        return RemoteRef(DOCKER_HUB, path if "/" in path else f"library/{path}",
                         r.tag, r.digest, r.name)
    return RemoteRef(domain, path, r.tag, r.digest, r.name)


def normalise_registry(registry: str) -> str:
    """The key under which credentials are kept: Docker Hub's spellings are one."""
    registry = registry.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
    if registry in ("index.docker.io", _HUB_API, "index.docker.io/v1"):
        return DOCKER_HUB
    return registry


def api_host(registry: str) -> str:
    return _HUB_API if registry == DOCKER_HUB else registry


def host_of(registry: str) -> str:
    """The host part of host[:port] ([v6]:port included)."""
    if registry.startswith("["):
        return registry[1:].partition("]")[0]
    host, sep, port = registry.rpartition(":")
    return host if sep and port.isdigit() and ":" not in host else registry


def insecure_from_env() -> tuple[str, ...]:
    """Extra insecure registries from $SKIFF_INSECURE_REGISTRIES (comma-separated
    host[:port] or CIDR): how `skiff lab` and `skiff up` name the cluster registry."""
    return tuple(x.strip() for x in os.environ.get(INSECURE_ENV, "").split(",") if x.strip())


def is_insecure(registry: str, extra: Iterable[str] = ()) -> bool:
    """Whether `registry` is spoken to over plain HTTP: it (or its host) is listed, or
    its host is an address inside a listed network."""
    host = host_of(registry)
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        addr = None
    for entry in (*DEFAULT_INSECURE, *extra):
        if entry in (registry, host):
            return True
        if "/" in entry and addr is not None:
            try:
                if addr in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def base_url(registry: str, insecure: Iterable[str] = ()) -> str:
    scheme = "http" if is_insecure(registry, insecure) else "https"
    return f"{scheme}://{api_host(registry)}"


def scope_for(repository: str, *actions: str) -> str:
    """A token scope (docker token spec): `repository:team/app:pull,push`."""
    return f"repository:{repository}:{','.join(actions)}"
