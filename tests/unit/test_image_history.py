"""`skiff image history`'s pure parts: docker's ages, and pairing history with layers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agent.images.models import Descriptor, HistoryEntry, Image, ImageConfig
from skiff.cli.image_ops import history_rows, human_age

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "Less than a second ago"), (1, "1 second ago"), (59, "59 seconds ago"),
    (60, "About a minute ago"), (180, "3 minutes ago"), (3600, "About an hour ago"),
    (47 * 3600, "47 hours ago"), (3 * 86400, "3 days ago"), (15 * 86400, "2 weeks ago"),
    (90 * 86400, "3 months ago"), (3 * 365 * 86400, "3 years ago"),
])
def test_human_age_as_docker(seconds: int, text: str) -> None:
    then = (NOW - timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    assert human_age(then, NOW) == text


def test_human_age_without_a_time() -> None:
    assert human_age(None, NOW) == "N/A" and human_age("yesterday", NOW) == "N/A"


def _image(history: tuple[HistoryEntry, ...], sizes: tuple[int, ...]) -> Image:
    layers = tuple(Descriptor("application/vnd.oci.image.layer.v1.tar+gzip",
                              f"sha256:{i:064x}", size) for i, size in enumerate(sizes))
    return Image(ref="x:1", digest="sha256:" + "f" * 64, id="sha256:" + "e" * 64,
                 config=ImageConfig(), layers=layers, diff_ids=(), created="2025-01-01T00:00:00Z",
                 history=history, size=sum(sizes))


def test_rows_pair_non_empty_entries_with_layers_in_order_newest_first() -> None:
    rows = history_rows(_image((HistoryEntry(created_by="base"),
                                HistoryEntry(created_by="ENV A=1", empty_layer=True),
                                HistoryEntry(created_by="RUN x", comment="c")), (10, 20)))
    assert [(r.created_by, r.size, r.comment) for r in rows] == [
        ("RUN x", 20, "c"), ("ENV A=1", 0, ""), ("base", 10, "")]
    assert rows[1].layer is None and rows[0].layer == f"sha256:{1:064x}"


def test_rows_without_history_are_one_per_layer_and_extra_entries_have_none() -> None:
    assert [r.size for r in history_rows(_image((), (1, 2, 3)))] == [3, 2, 1]
    rows = history_rows(_image((HistoryEntry(created_by="a"), HistoryEntry(created_by="b")),
                               (7,)))
    assert [(r.created_by, r.layer is None) for r in rows] == [("b", True), ("a", False)]
