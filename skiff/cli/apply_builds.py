"""The `build:` half of `skiff apply`: each service with `build:` is built on the
cluster and pushed to its registry, and the app is then applied with that service's
image pinned to what was built (`name:tag@sha256:...`), as `docker stack deploy` pins
images to digests. The pin is why a rebuild that changed anything rolls the service's
tasks, and one that changed nothing leaves them alone: the digest is the same.

The build context is on this machine, so `build:` never reaches the server: the App
it stores has the pinned image instead. A failed build stops the apply before anything
is written."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from skiff.cli.build_cmd import prepare, run_build
from skiff.cli.build_progress import make_progress
from skiff.manifest.builds import services_to_build, without_builds
from skiff.models.appspec import AppSpec


def pinned(image: str, digest: str) -> str:
    """`todo:1` + digest → `todo:1@sha256:...`; a name without a tag gets `latest`."""
    name = image.split("@", 1)[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon <= slash:
        name += ":latest"
    return f"{name}@{digest}"


async def build_services(api: Any, app: AppSpec, *, progress: str, dry_run: bool,
                         no_cache: bool = False) -> AppSpec:
    """The app with every `build:` done and replaced by its pinned image."""
    images: dict[str, str] = {}
    for name, service in services_to_build(app):
        spec = service.build
        assert spec is not None
        context = Path(spec.context)
        if dry_run:
            print(f"service {name}: would build {service.image} from {context}",
                  file=sys.stderr)
            images[name] = service.image
            continue
        build, listing = prepare(context, str(context / spec.dockerfile), [service.image],
                                 spec.args, spec.target, no_cache)
        print(f"service {name}: building {service.image} from {context}", file=sys.stderr)
        result = await run_build(api, build, listing, make_progress(progress))
        if not result.get("pushed"):
            print(f"warning: service {name}: no cluster registry, so {service.image} is "
                  f"only on node {result['node']}", file=sys.stderr)
        images[name] = pinned(service.image, result["digest"])
        print(f"service {name}: built {images[name]}", file=sys.stderr)
    return without_builds(app, images) if images else app
