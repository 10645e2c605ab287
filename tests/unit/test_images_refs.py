"""Image references: what parses, how it is normalised, and what is refused."""

from __future__ import annotations

import pytest

from agent.images.errors import InvalidReference
from agent.images.refs import Ref, normalise, parse_ref

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(("text", "expected"), [
    ("busybox", "busybox:latest"),
    ("busybox:latest", "busybox:latest"),
    ("busybox:1.36", "busybox:1.36"),
    ("docker.io/library/busybox", "busybox:latest"),
    ("index.docker.io/library/busybox:1", "busybox:1"),
    ("docker.io/user/app:v2", "user/app:v2"),
    ("library/busybox", "library/busybox:latest"),  # only Docker Hub's spelling is folded
    ("localhost:5000/app", "localhost:5000/app:latest"),
    ("localhost:5000/team/app:v1.2_3", "localhost:5000/team/app:v1.2_3"),
    ("registry.example.com/a-b/c__d.e:TAG", "registry.example.com/a-b/c__d.e:TAG"),
    (f"busybox@{D}", f"busybox@{D}"),
    (f"busybox:1@{D}", f"busybox:1@{D}"),
])
def test_normalise(text, expected):
    assert normalise(text) == expected


def test_busybox_and_busybox_latest_are_one_tag():
    assert parse_ref("busybox").tagged == parse_ref("busybox:latest").tagged == "busybox:latest"
    assert parse_ref("docker.io/library/busybox").tagged == "busybox:latest"


def test_digest_only_reference_has_no_tag():
    assert parse_ref(f"app@{D}") == Ref("app", None, D)


def test_port_is_not_mistaken_for_a_tag():
    r = parse_ref("localhost:5000/app")
    assert (r.name, r.tag) == ("localhost:5000/app", "latest")


@pytest.mark.parametrize("text", [
    "", " busybox", "BusyBox", "busybox:", "busybox:bad tag", "busy//box", "-busybox",
    "busybox@sha256:abc", f"busybox@sha512:{'a' * 128}", "a/../b", "busybox:" + "t" * 129,
    "docker.io/", "x" * 300,
])
def test_invalid_references_are_refused_with_the_reason(text):
    with pytest.raises(InvalidReference, match="invalid image reference"):
        parse_ref(text)
