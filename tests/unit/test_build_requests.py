"""The pure parts of `skiff build`'s path: which node builds, the options an agent
accepts, the events on the wire, --build-arg, and what the CLI prints."""

from __future__ import annotations

import dataclasses
import io

import pytest

from agent.build.request import BadBuildRequest, BuildRequest, parse_build_request
from controller.build_placement import NoBuildNode, pick_build_node
from skiff.build.events import BuildEvent
from skiff.cli.build_cmd import parse_build_args
from skiff.cli.build_progress import PlainProgress
from skiff.cli.context import CliError
from skiff.models.objects import Node
from tests.unit.factories import node


def agent_node(name: str, **kw: object) -> Node:
    n = node(name, **kw)  # type: ignore[arg-type]
    return dataclasses.replace(n, status=dataclasses.replace(
        n.status, address="10.0.0.1", agent_port=7481))


NODES = [agent_node(f"n{i}") for i in range(1, 6)]


def test_the_same_image_name_builds_on_the_same_node_whatever_its_tag() -> None:
    first = pick_build_node(NODES, "todo:1").metadata.name
    assert pick_build_node(list(reversed(NODES)), "todo:2").metadata.name == first
    assert pick_build_node(NODES, "todo@sha256:" + "a" * 64).metadata.name == first


def test_builds_spread_over_nodes_by_name() -> None:
    picked = {pick_build_node(NODES, f"app{i}:1").metadata.name for i in range(40)}
    assert len(picked) >= 4


def test_only_the_builds_of_a_lost_node_move() -> None:
    names = [f"app{i}" for i in range(60)]
    before = {n: pick_build_node(NODES, n).metadata.name for n in names}
    gone = "n3"
    after = {n: pick_build_node([x for x in NODES if x.metadata.name != gone], n)
             .metadata.name for n in names}
    moved = {n for n in names if before[n] != after[n]}
    assert moved == {n for n in names if before[n] == gone}


def test_nodes_that_cannot_build_are_passed_over_and_named() -> None:
    down = agent_node("n1", ready=False)
    cordoned = agent_node("n2", unschedulable=True)
    no_agent = node("n3")
    with pytest.raises(NoBuildNode, match="n1 not ready, n2 cordoned, n3 no agent endpoint"):
        pick_build_node([down, cordoned, no_agent], "todo:1")
    assert pick_build_node([down, agent_node("n4")], "todo:1").metadata.name == "n4"
    with pytest.raises(NoBuildNode, match="node n1 cannot build: not ready"):
        pick_build_node([down, agent_node("n4")], "todo:1", wanted="n1")
    with pytest.raises(NoBuildNode, match="no node n9"):
        pick_build_node(NODES, "todo:1", wanted="n9")
    with pytest.raises(NoBuildNode, match="none joined"):
        pick_build_node([], None)


def test_a_request_round_trips_through_its_wire_form() -> None:
    req = BuildRequest("FROM busybox\n", "app.Dockerfile", ("todo:1", "todo:latest"),
                       {"V": "1"}, "final", True)
    assert parse_build_request(req.to_wire()) == req
    assert parse_build_request({"dockerfile": "FROM scratch"}) == BuildRequest("FROM scratch")


@pytest.mark.parametrize(("data", "message"), [
    ([], "must be a JSON object"),
    ({}, "dockerfile: the Dockerfile's text is missing"),
    ({"dockerfile": 3}, "dockerfile: expected a string, got int"),
    ({"dockerfile": "", "context": "/"}, "unknown build option.*context"),
    ({"dockerfile": "", "tags": "todo"}, "tags: expected a list"),
    ({"dockerfile": "", "tags": ["Todo:1"]}, r"tags\[0\]: invalid image reference 'Todo:1'"),
    ({"dockerfile": "", "tags": ["a@sha256:" + "0" * 64]}, r"tags\[0\]: .* has a digest"),
    ({"dockerfile": "", "buildArgs": {"A": 1}}, "buildArgs.A: expected a string"),
    ({"dockerfile": "", "noCache": "yes"}, "noCache: expected true or false"),
])
def test_bad_requests_name_the_field(data: object, message: str) -> None:
    with pytest.raises(BadBuildRequest, match=message):
        parse_build_request(data)


def test_events_round_trip_and_bad_ones_are_refused() -> None:
    event = BuildEvent("done", stage="build", step=3, total=7, instruction="RUN make",
                       seconds=2.5)
    assert BuildEvent.from_wire(event.to_wire()) == event
    assert BuildEvent.from_wire({"kind": "cached", "extra": 1}) == BuildEvent("cached")
    for bad in ({"kind": "exploded"}, {"kind": "step", "step": "3"}, "step",
                {"kind": "step", "step": True}):
        with pytest.raises(ValueError):
            BuildEvent.from_wire(bad)


def test_build_args_take_unset_values_from_the_environment() -> None:
    env = {"HOME_ARG": "h"}
    assert parse_build_args(["A=1", "B=", "HOME_ARG", "MISSING", "C=x=y"], env) == {
        "A": "1", "B": "", "HOME_ARG": "h", "C": "x=y"}
    with pytest.raises(CliError, match="expected NAME=value"):
        parse_build_args(["=1"], env)


def test_plain_progress_prints_each_event_and_status() -> None:
    out = io.StringIO()
    progress = PlainProgress(out)
    progress.status("building on node n1")
    progress.event(BuildEvent("step", stage="#0", step=2, total=3, instruction="RUN x"))
    progress.event(BuildEvent("output", text="hello"))
    progress.event(BuildEvent("cached"))
    assert out.getvalue().splitlines() == [
        "=> building on node n1", "[#0] STEP 2/3: RUN x", "  hello", "  ---> CACHED"]


def test_apply_pins_a_built_image_to_its_digest() -> None:
    from skiff.cli.apply_builds import pinned
    digest = "sha256:" + "b" * 64
    assert pinned("shop-web", digest) == f"shop-web:latest@{digest}"
    assert pinned("reg:5000/shop/web:2", digest) == f"reg:5000/shop/web:2@{digest}"
    assert pinned("reg:5000/web", digest) == f"reg:5000/web:latest@{digest}"
