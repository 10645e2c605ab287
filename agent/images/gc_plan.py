"""Which images an agent removes from its node: a pure decision, like the kubelet's image
GC but by time rather than disk pressure (documented in docs/architecture.md).

An image (a manifest in the store, with all its tags) goes when all of these hold:
- no task on the node names it (by tag or digest), running or about to run;
- the agent has not seen it in use, nor first seen it, for `unused_for` seconds;
- it can be had again: one of its tags names a registry (`10.0.0.1:5000/todo:1`), as
  every image the agent pulled does. Images built or imported on this node (only bare
  tags: `todo:1`, the busybox base image) are the user's to remove with `skiff rmi`,
  since nothing could bring them back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from agent.images.refs import parse_ref, split_domain

DEFAULT_UNUSED_FOR = 3600.0  # seconds
DEFAULT_INTERVAL = 300.0  # seconds between passes


@dataclass(frozen=True)
class GcPolicy:
    unused_for: float = DEFAULT_UNUSED_FOR


@dataclass(frozen=True)
class StoredImage:
    digest: str  # the manifest's
    tags: tuple[str, ...] = ()
    size: int = 0


@dataclass(frozen=True)
class GcPlan:
    remove: list[StoredImage] = field(default_factory=list)
    # digest → when it was last in use (or first seen): the caller keeps this for the
    # next pass; digests no longer stored are dropped.
    last_used: dict[str, float] = field(default_factory=dict)


def refetchable(image: StoredImage) -> bool:
    """Whether a registry has it: one of its tags names one."""
    for tag in image.tags:
        domain, _path = split_domain(parse_ref(tag).name)
        if domain is not None:
            return True
    return False


def in_use_digests(images: Iterable[StoredImage], in_use: Iterable[str]) -> set[str]:
    """The digests of the stored images that `in_use` (task image refs, maybe pinned to a
    digest, or bare digests) names."""
    stored = list(images)
    by_tag = {parse_ref(t).tagged: img.digest for img in stored for t in img.tags}
    out: set[str] = set()
    for ref in in_use:
        if ref.startswith("sha256:"):
            out.add(ref)
            continue
        try:
            parsed = parse_ref(ref)
        except ValueError:
            continue
        if parsed.digest is not None:
            out.add(parsed.digest)
        elif parsed.tagged in by_tag:
            out.add(by_tag[parsed.tagged])
    return out


def plan_image_gc(images: Iterable[StoredImage], in_use: Iterable[str], now: float,
                  last_used: Mapping[str, float], policy: GcPolicy = GcPolicy()) -> GcPlan:
    stored = list(images)
    used = in_use_digests(stored, in_use)
    seen: dict[str, float] = {}
    remove: list[StoredImage] = []
    for image in stored:
        when = now if image.digest in used else last_used.get(image.digest, now)
        seen[image.digest] = when
        if image.digest in used or now - when < policy.unused_for:
            continue
        if refetchable(image):
            remove.append(image)
            del seen[image.digest]
    return GcPlan(remove, seen)
