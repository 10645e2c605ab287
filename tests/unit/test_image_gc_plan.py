"""The agent's image GC plan: pulled images nobody used for a while go; images in use,
recently used, or made on this node stay."""

from __future__ import annotations

from agent.images.gc_plan import GcPolicy, StoredImage, in_use_digests, plan_image_gc

D = {name: "sha256:" + ch * 64 for name, ch in (("web", "a"), ("db", "b"), ("base", "c"),
                                                   ("old", "d"))}
REG = "10.0.0.1:5000"
IMAGES = [
    StoredImage(D["web"], (f"{REG}/web:1", "web:1")),  # pulled: a bare alias too
    StoredImage(D["db"], (f"{REG}/db:2",)),
    StoredImage(D["base"], ("busybox:latest",)),  # made on this node
    StoredImage(D["old"], ("ghcr.io/x/old:1",)),
]
POLICY = GcPolicy(unused_for=100)


def removed(plan) -> set[str]:  # type: ignore[no-untyped-def]
    return {i.digest for i in plan.remove}


def test_first_pass_only_starts_the_clock() -> None:
    plan = plan_image_gc(IMAGES, set(), 1000.0, {}, POLICY)
    assert plan.remove == []
    assert plan.last_used == dict.fromkeys(D.values(), 1000.0)


def test_unused_pulled_images_go_once_their_time_is_up() -> None:
    first = plan_image_gc(IMAGES, set(), 1000.0, {}, POLICY)
    assert plan_image_gc(IMAGES, set(), 1099.0, first.last_used, POLICY).remove == []
    later = plan_image_gc(IMAGES, set(), 1100.0, first.last_used, POLICY)
    assert removed(later) == {D["web"], D["db"], D["old"]}
    assert set(later.last_used) == {D["base"]}  # what stays is still watched


def test_in_use_by_tag_bare_alias_or_digest_is_kept_and_refreshed() -> None:
    last = dict.fromkeys(D.values(), 0.0)
    in_use = {"web:1", f"{REG}/db:2@{D['db']}"}
    plan = plan_image_gc(IMAGES, in_use, 1000.0, last, POLICY)
    assert removed(plan) == {D["old"]}
    assert plan.last_used[D["web"]] == plan.last_used[D["db"]] == 1000.0
    # Once no task needs them, they wait their full time from the last use.
    assert plan_image_gc(IMAGES, set(), 1050.0, plan.last_used, POLICY).remove == []


def test_images_made_here_are_never_collected() -> None:
    plan = plan_image_gc(IMAGES, set(), 10**9, dict.fromkeys(D.values(), 0.0), POLICY)
    assert D["base"] not in removed(plan)


def test_in_use_digests_reads_refs_pins_and_bare_digests() -> None:
    assert in_use_digests(IMAGES, ["web", "web:1", "nope:1", "Bad Ref", D["old"],
                                   f"other@{D['db']}"]) == {D["web"], D["old"], D["db"]}
