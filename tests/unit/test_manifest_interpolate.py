"""Compose interpolation (${VAR} and friends) and the .env file beside the manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from skiff.manifest import ManifestError, load_file, load_text
from skiff.manifest.dotenv import parse_dotenv
from skiff.manifest.interpolate import InterpolationError, Interpolator

ENV = {"SET": "value", "EMPTY": "", "N": "3", "PORT": "8080"}


@pytest.mark.parametrize("text, expected", [
    ("plain", "plain"),
    ("$SET", "value"),
    ("${SET}", "value"),
    ("a-${SET}-b", "a-value-b"),
    ("$SET.txt", "value.txt"),
    ("$UNSET", ""),
    ("${UNSET:-dflt}", "dflt"),
    ("${EMPTY:-dflt}", "dflt"),
    ("${EMPTY-dflt}", ""),
    ("${UNSET-dflt}", "dflt"),
    ("${SET:-dflt}", "value"),
    ("${SET:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${EMPTY+alt}", "alt"),
    ("${UNSET+alt}", ""),
    ("${SET:?must}", "value"),
    ("${EMPTY?must}", ""),
    ("$$", "$"),
    ("$$SET", "$SET"),
    ("$${SET}", "${SET}"),
    ("cost: $$5", "cost: $5"),
    ("${UNSET:-${SET}}", "value"),
    ("${A:-${B:-x}}", "x"),
    ("${UNSET:-${EMPTY:-${SET}}}!", "value!"),
    ("${SET:-${NOT_USED:?never evaluated}}", "value"),
    ("${UNSET:-a b}c}", "a bc}"),
    ("${PORT}:80", "8080:80"),
    ("}{", "}{"),
])
def test_interpolation(text: str, expected: str) -> None:
    assert Interpolator(ENV)(text) == expected


@pytest.mark.parametrize("text, fragment", [
    ("${UNSET:?set it please}", "required variable UNSET is missing a value: set it please"),
    ("${EMPTY:?}", "required variable EMPTY is missing a value"),
    ("${UNSET?}", "required variable UNSET is missing a value"),
    ("$", "write $$ for a literal $"),
    ("50$ off", "invalid interpolation"),
    ("${", "invalid variable name"),
    ("${1X}", "invalid variable name"),
    ("${SET", "expected }"),
    ("${SET:x}", "expected }"),
    ("${UNSET:-open", "unclosed ${"),
])
def test_interpolation_errors(text: str, fragment: str) -> None:
    with pytest.raises(InterpolationError, match=None) as info:
        Interpolator(ENV)(text)
    assert fragment in str(info.value)


def test_unset_variables_are_remembered_once_in_order() -> None:
    interp = Interpolator({})
    interp("$B ${A} $B ${C:-x} ${D-}")
    assert interp.unset == ["B", "A"]


MANIFEST = """\
name: ${APP:-shop}
services:
  web:
    image: nginx:${TAG:-latest}
    environment:
      GREETING: ${GREETING}
      LITERAL: $$HOME
    deploy:
      replicas: ${N}
    privileged: ${PRIV:-false}
    ports: ["${PORT:-80}:80"]
    ${KEYS_ARE_NOT_INTERPOLATED:-x-key}: 1
"""


def test_values_are_interpolated_and_cast_but_keys_are_not() -> None:
    with pytest.raises(ManifestError) as info:
        load_text(MANIFEST, "app.yml", None, {"N": "2"})
    assert 'unknown key "${KEYS_ARE_NOT_INTERPOLATED:-x-key}"' in str(info.value)
    text = MANIFEST.replace("    ${KEYS_ARE_NOT_INTERPOLATED:-x-key}: 1\n", "")
    result = load_text(text, "app.yml", None, {"N": "2", "PORT": "8080", "PRIV": "true"})
    web = result.app.services["web"]
    assert result.app.name == "shop"
    assert web.image == "nginx:latest"
    assert web.environment == {"GREETING": "", "LITERAL": "$HOME"}
    assert web.deploy.replicas == 2 and web.privileged is True
    assert web.ports[0].published == 8080
    assert result.warnings == ['app.yml:6:17 services.web.environment.GREETING: variable '
                               '"GREETING" is not set; using an empty string']


def test_interpolation_error_points_at_the_value() -> None:
    text = "name: app\nservices:\n  web:\n    image: ${IMAGE:?which image?}\n"
    with pytest.raises(ManifestError) as info:
        load_text(text, "app.yml", None, {})
    assert str(info.value) == ("app.yml:4:12 services.web.image: required variable IMAGE is "
                               "missing a value: which image?")


def test_unset_replicas_is_empty_and_then_not_an_integer() -> None:
    text = "name: app\nservices: {web: {image: x, deploy: {replicas: '${N}'}}}\n"
    with pytest.raises(ManifestError, match='expected an integer, got ""'):
        load_text(text, "app.yml", None, {})


DOTENV = """\
# settings for the shop
TAG=1.25
export N=4
QUOTED="two words" # a comment
SINGLE='$NOT_EXPANDED'
FROM_ENV=dotenv
"""


def test_dotenv_beside_the_manifest(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(DOTENV)
    (tmp_path / "app.yml").write_text(
        "name: shop\nservices:\n  web:\n    image: nginx:${TAG}\n"
        "    deploy: {replicas: '${N}'}\n"
        "    environment: [QUOTED, 'SINGLE=$${SINGLE}', 'WHO=${FROM_ENV}', TAG]\n")
    result = load_file(tmp_path / "app.yml", environ={"FROM_ENV": "process"})
    web = result.app.services["web"]
    assert web.image == "nginx:1.25"
    assert web.deploy.replicas == 4
    # The process environment wins over .env; a bare name takes the value from either.
    assert web.environment == {"QUOTED": "two words", "SINGLE": "${SINGLE}",
                               "WHO": "process", "TAG": "1.25"}


def test_bad_dotenv_line_is_reported_with_its_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("A=1\nthis is not a setting\n")
    (tmp_path / "app.yml").write_text("name: a\nservices: {web: {image: x}}\n")
    with pytest.raises(ManifestError) as info:
        load_file(tmp_path / "app.yml", environ={})
    assert str(info.value) == f"{tmp_path}/.env:2:1: not KEY=VALUE: 'this is not a setting'"


@pytest.mark.parametrize("line, expected", [
    ("A=1", {"A": "1"}),
    ("export A=1", {"A": "1"}),
    ("  A = spaced  ", {"A": "spaced"}),
    ("A=", {"A": ""}),
    ("A=x # comment", {"A": "x"}),
    ("A=x#not-comment", {"A": "x#not-comment"}),
    ("A='single # kept $X'", {"A": "single # kept $X"}),
    ('A="esc \\"q\\" \\n"', {"A": 'esc "q" \n'}),
    ('A="x" # comment', {"A": "x"}),
    ("A=a=b", {"A": "a=b"}),
    ("# only a comment", {}),
    ("", {}),
    ("A.B-C=1", {"A.B-C": "1"}),
])
def test_dotenv_lines(line: str, expected: dict[str, str]) -> None:
    assert parse_dotenv(line, ".env") == (expected, [])


@pytest.mark.parametrize("line, fragment", [
    ("no equals sign", "not KEY=VALUE"),
    ("1A=x", "not KEY=VALUE"),
    ('A="unclosed', "unclosed double quote"),
    ("A='unclosed", "unclosed single quote"),
    ("A='x' y", "unexpected text after the closing quote"),
])
def test_dotenv_bad_lines(line: str, fragment: str) -> None:
    values, problems = parse_dotenv(line, ".env")
    assert values == {} and len(problems) == 1 and fragment in problems[0].message
