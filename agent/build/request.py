"""What `skiff build` asks of an agent, as the CLI sends it: the JSON options part of
the upload (the context tar is the other part). Checked here, before any work, so a bad
request is one clear error and never a half-made build."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.images.errors import InvalidReference
from agent.images.refs import parse_ref

MAX_OPTIONS_BYTES = 1 << 20  # the Dockerfile travels in the options
MAX_TAGS = 16
MAX_BUILD_ARGS = 256


class BadBuildRequest(ValueError):
    """The options name what is wrong: `tags[1]: "Todo:1" is not a valid image name`."""


@dataclass(frozen=True)
class BuildRequest:
    dockerfile: str  # its text
    dockerfile_name: str = "Dockerfile"  # for messages: `Dockerfile:7: ...`
    tags: tuple[str, ...] = ()  # the first is the build's own; all are pushed
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False

    def to_wire(self) -> dict[str, Any]:
        return {"dockerfile": self.dockerfile, "dockerfileName": self.dockerfile_name,
                "tags": list(self.tags), "buildArgs": dict(self.build_args),
                "target": self.target, "noCache": self.no_cache}


def _string(data: Mapping[str, Any], key: str, default: str | None) -> str | None:
    value = data.get(key, default)
    if value is not None and not isinstance(value, str):
        raise BadBuildRequest(f"{key}: expected a string, got {type(value).__name__}")
    return value


def parse_build_request(data: Any) -> BuildRequest:
    """The request in `data` (decoded JSON); BadBuildRequest naming the field if not."""
    if not isinstance(data, dict):
        raise BadBuildRequest("the build options must be a JSON object")
    unknown = sorted(set(data) - {"dockerfile", "dockerfileName", "tags", "buildArgs",
                                  "target", "noCache"})
    if unknown:
        raise BadBuildRequest(f"unknown build option(s): {', '.join(unknown)}")
    dockerfile = _string(data, "dockerfile", None)
    if dockerfile is None:
        raise BadBuildRequest("dockerfile: the Dockerfile's text is missing")
    name = _string(data, "dockerfileName", "Dockerfile") or "Dockerfile"
    target = _string(data, "target", None) or None
    tags = data.get("tags", [])
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        raise BadBuildRequest(f"tags: expected a list of at most {MAX_TAGS} image names")
    for i, tag in enumerate(tags):
        if not isinstance(tag, str):
            raise BadBuildRequest(f"tags[{i}]: expected a string")
        try:
            ref = parse_ref(tag)
        except InvalidReference as exc:
            raise BadBuildRequest(f"tags[{i}]: {exc}") from None
        if ref.digest is not None:
            raise BadBuildRequest(f"tags[{i}]: {tag!r} has a digest; a build names a tag")
    args = data.get("buildArgs", {})
    if not isinstance(args, dict) or len(args) > MAX_BUILD_ARGS:
        raise BadBuildRequest(f"buildArgs: expected an object of at most {MAX_BUILD_ARGS} "
                              "NAME: value pairs")
    for key, value in args.items():
        if not key or not isinstance(value, str):
            raise BadBuildRequest(f"buildArgs.{key}: expected a string value")
    no_cache = data.get("noCache", False)
    if not isinstance(no_cache, bool):
        raise BadBuildRequest("noCache: expected true or false")
    return BuildRequest(dockerfile, name, tuple(tags), dict(args), target, no_cache)
