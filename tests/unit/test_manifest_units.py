"""Compose's small languages: durations, byte sizes, port and volume strings."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skiff.manifest import parse_bytes, parse_duration
from skiff.manifest.mounts import MountError, parse_short
from skiff.manifest.ports import PortError
from skiff.manifest.ports import parse_short as parse_port
from skiff.manifest.units import MAX_DURATION_SECONDS, format_duration
from skiff.models.appspec import BindOptions, Mount, PortMapping


@pytest.mark.parametrize("text, seconds", [
    ("10s", 10.0), ("1m30s", 90.0), ("1.5s", 1.5), ("500ms", 0.5), ("1h", 3600.0),
    ("2h3m4s", 7384.0), ("100us", 1e-4), ("1000ns", 1e-6), (" 5s ", 5.0), (0, 0.0),
    (12, 12.0), (2.5, 2.5),
])
def test_parse_duration(text: str | int | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "s", "1x", "-1s", "1.s", "1 s", "1m 30s", "1e3s",
                                  True, None, -5, float("nan"), float("inf"), "9999999h"])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)  # type: ignore[arg-type]


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (0.5, "500ms"), (1.5, "1.5s"), (90, "1m30s"), (3600, "1h"), (3661.25, "1h1m1.25s"),
    (1e-3, "1ms"), (1e-6, "0.001ms"), (59.999999, "59.999999s"),
])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.floats(0, MAX_DURATION_SECONDS))
def test_canonical_duration_is_stable(seconds: float) -> None:
    text = format_duration(seconds)
    assert format_duration(parse_duration(text)) == text
    assert parse_duration(text) == pytest.approx(seconds, abs=1e-6)


@pytest.mark.parametrize("text, size", [
    ("100b", 100), ("1024k", 2**20), ("512m", 512 * 2**20), ("1g", 2**30), ("2gb", 2**31),
    ("1.5g", 3 * 2**29), ("64M", 64 * 2**20), ("10", 10), (4096, 4096), ("1t", 2**40),
    ("0", 0),
])
def test_parse_bytes(text: str | int, size: int) -> None:
    assert parse_bytes(text) == size


@pytest.mark.parametrize("text", ["", "m", "1x", "-1m", "1 g b", "1e9", True, 1.5, None, -1,
                                  "9" * 40, "99999999999t", 2**63])
def test_parse_bytes_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_bytes(text)  # type: ignore[arg-type]


@pytest.mark.parametrize("spec, expected", [
    ("80", [PortMapping(80)]),
    (80, [PortMapping(80)]),
    ("0.0.0.0:80:80/udp", [PortMapping(80, 80, "udp", "0.0.0.0")]),
    ("[::1]::53/udp", [PortMapping(53, None, "udp", "::1")]),
    ("1-2:3-4", [PortMapping(3, 1), PortMapping(4, 2)]),
])
def test_port_short_syntax(spec: str | int, expected: list[PortMapping]) -> None:
    assert parse_port(spec) == expected


@pytest.mark.parametrize("spec", ["", ":", "80:", "a:80", "80:80:80", "1:2:3:4", "80/",
                                  "[::1:80:80", "[::1]80", "65536", "1-2:3", "5-1",
                                  "80:80/TCP"])
def test_port_short_syntax_rejects(spec: str) -> None:
    with pytest.raises(PortError, match="is not a port mapping"):
        parse_port(spec)


BASE = Path("/home/u/app")


@pytest.mark.parametrize("spec, expected", [
    ("/data", Mount(type="volume", target="/data")),
    ("//data//x/", Mount(type="volume", target="/data/x")),
    ("db:/var/lib/db", Mount(type="volume", source="db", target="/var/lib/db")),
    (".:/src:ro", Mount(type="bind", source="/home/u/app", target="/src", read_only=True,
                        bind=BindOptions(create_host_path=True))),
    (".env.d:/e", Mount(type="bind", source="/home/u/app/.env.d", target="/e",
                        bind=BindOptions(create_host_path=True))),
])
def test_volume_short_syntax(spec: str, expected: Mount) -> None:
    assert parse_short(spec, BASE) == expected


@pytest.mark.parametrize("spec, fragment", [
    ("data", "must be an absolute path"),
    ("db:/a/../b", "must not contain '..'"),
    (":/x", "has an empty source"),
    ("a:/b:ro:x", "is not SOURCE:TARGET"),
    ("d b:/x", "volume name"),
    ("/a:/b:rox", 'unknown mode "rox"'),
])
def test_volume_short_syntax_rejects(spec: str, fragment: str) -> None:
    with pytest.raises(MountError, match=None) as info:
        parse_short(spec, BASE)
    assert fragment in str(info.value)
