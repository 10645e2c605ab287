"""The image a stage has built so far: its layers, its config (Docker's JSON `config`
object, kept raw so fields skiff does not model, like Shell and OnBuild, survive), its
history. Pure and immutable: every step makes a new state.

`state_id` names a state for the layer cache: the sha256 of the layer chain, the config
and the history. Two builds that reach equal states share every cache entry after it."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.images.models import Descriptor, Image
from agent.images.oci import canonical_json, host_platform

EPOCH = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class LayerRef:
    descriptor: Descriptor  # the gzip blob
    diff_id: str  # sha256 of the uncompressed tar

    def to_json(self) -> dict[str, Any]:
        return {"descriptor": self.descriptor.to_json(), "diff_id": self.diff_id}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> LayerRef:
        d = obj["descriptor"]
        return cls(Descriptor(str(d["mediaType"]), str(d["digest"]), int(d["size"])),
                   str(obj["diff_id"]))


@dataclass(frozen=True)
class ImageState:
    layers: tuple[LayerRef, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    history: tuple[Mapping[str, Any], ...] = ()
    created: str | None = None
    author: str | None = None

    @property
    def diff_ids(self) -> list[str]:
        return [x.diff_id for x in self.layers]

    def state_id(self) -> str:
        return "sha256:" + hashlib.sha256(canonical_json({
            "diff_ids": self.diff_ids, "config": self.config,
            "history": list(self.history), "author": self.author})).hexdigest()

    def config_copy(self) -> dict[str, Any]:
        return copy.deepcopy(dict(self.config))

    def env_map(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.config.get("Env") or []:
            key, _, value = str(item).partition("=")
            out[key] = value
        return out

    def then(self, *, layer: LayerRef | None, config: Mapping[str, Any],
             history: Mapping[str, Any] | None, created: str | None,
             author: str | None = None) -> ImageState:
        """The state after one step."""
        return ImageState(
            layers=self.layers + ((layer,) if layer is not None else ()),
            config=config,
            history=self.history + ((history,) if history is not None else ()),
            created=created or self.created,
            author=author if author is not None else self.author)


def state_from_image(image: Image, raw_config: Mapping[str, Any]) -> ImageState:
    """A base image as the start of a stage. `raw_config` is the image's config blob."""
    config = raw_config.get("config") or {}
    history = tuple(h for h in raw_config.get("history") or [] if isinstance(h, dict))
    layers = tuple(LayerRef(d, diff) for d, diff in zip(image.layers, image.diff_ids,
                                                         strict=True))
    author = raw_config.get("author")
    return ImageState(layers, copy.deepcopy(dict(config)), history,
                      raw_config.get("created") or image.created,
                      author if isinstance(author, str) else None)


def image_config_json(state: ImageState) -> bytes:
    """The OCI image config of a finished build (canonical JSON: equal states give equal
    bytes, so a fully cached rebuild yields the same image digest)."""
    os_name, arch = host_platform()
    obj: dict[str, Any] = {
        "created": state.created or EPOCH, "architecture": arch, "os": os_name,
        "config": dict(state.config),
        "rootfs": {"type": "layers", "diff_ids": state.diff_ids},
        "history": [dict(h) for h in state.history],
    }
    if state.author:
        obj["author"] = state.author
    return canonical_json(obj)
