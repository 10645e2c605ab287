"""compose's `build:` key: the checks its values need, and the two steps `skiff apply`
takes with it (which services to build; the app with the built images in their place).

The context is a folder on the CLI's machine, resolved beside the manifest like a bind
source; the Dockerfile is named relative to it and may not leave it. Remote contexts (git
URLs, tarball URLs) are not supported: there is no internet to fetch them from."""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Mapping
from pathlib import Path

from skiff.manifest.errors import quote
from skiff.manifest.mounts import MountError, resolve_bind
from skiff.models.appspec import AppSpec, ServiceSpec

_REMOTE = ("http://", "https://", "git://", "git@", "ssh://", "github.com/")


def resolve_context(text: str, base_dir: Path | None) -> str:
    """The context folder as an absolute path; ValueError saying why not."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the build context must be a folder path")
    if text.startswith(_REMOTE) or "://" in text:
        raise ValueError(f"remote build context {quote(text)} is not supported; "
                         "give a folder beside the manifest")
    source = text if text.startswith(("/", ".", "~")) else "./" + text
    try:
        return resolve_bind(source, base_dir)
    except MountError as exc:
        raise ValueError(str(exc).replace("bind source", "build context")) from None


def check_dockerfile(text: str | None) -> str:
    """The Dockerfile's path inside the context, as written; ValueError if it would
    leave the context."""
    if text is None:
        return "Dockerfile"
    if not text.strip():
        raise ValueError("dockerfile must not be empty")
    if text.startswith("/"):
        raise ValueError(f"dockerfile {quote(text)} must be relative to the build context")
    if posixpath.normpath(text).split("/")[0] == "..":
        raise ValueError(f"dockerfile {quote(text)} leaves the build context")
    return text


def services_to_build(app: AppSpec) -> list[tuple[str, ServiceSpec]]:
    """The services with `build:`, in the manifest's order."""
    return [(name, svc) for name, svc in app.services.items() if svc.build is not None]


def without_builds(app: AppSpec, images: Mapping[str, str]) -> AppSpec:
    """`app` with each service in `images` given that image and its `build:` dropped:
    what the server gets once the CLI has built them."""
    services = {name: (dataclasses.replace(svc, image=images[name], build=None)
                       if name in images else svc)
                for name, svc in app.services.items()}
    return dataclasses.replace(app, services=services)
