"""compose's `build:` in skiff manifests: both forms, where the context is, the default
image name, the errors, the round trip, and what the CLI sends after building."""

from __future__ import annotations

from pathlib import Path

import pytest

from skiff.manifest import ManifestError, load_document, load_files, load_text, to_compose
from skiff.manifest.builds import services_to_build, without_builds
from skiff.models.appspec import BuildSpec

BASE = Path("/srv/proj")


def load(text: str, env: dict[str, str] | None = None, base: Path | None = BASE):
    return load_text(text, "app.yml", base, environ=env or {}).app


def problems(text: str, base: Path | None = BASE) -> list[str]:
    with pytest.raises(ManifestError) as info:
        load_text(text, "app.yml", base, environ={})
    return [f"{p.line}:{p.column} {p.path}: {p.message}" for p in info.value.problems]


def test_short_form_is_a_context_beside_the_manifest_and_names_the_image() -> None:
    app = load("name: shop\nservices:\n  Web:\n    build: ./web\n  db:\n    build: db\n")
    assert app.services["Web"].build == BuildSpec(context="/srv/proj/web")
    assert app.services["Web"].image == "shop-web"  # compose v2's <project>-<service>
    assert app.services["db"].build == BuildSpec(context="/srv/proj/db")


def test_long_form_with_args_from_a_map_a_list_and_the_environment() -> None:
    app = load("""\
name: shop
services:
  api:
    image: shop/api:2
    build:
      context: ../src
      dockerfile: docker/api.Dockerfile
      args: {VERSION: 2, DEBUG: false, FROM_ENV: null, UNSET: null}
      target: final
  worker:
    build:
      args: [A=1, HOME_DIR, MISSING]
""", env={"FROM_ENV": "e", "HOME_DIR": "/h"})
    api = app.services["api"]
    assert api.image == "shop/api:2"
    assert api.build == BuildSpec(context="/srv/src", dockerfile="docker/api.Dockerfile",
                                  args={"VERSION": "2", "DEBUG": "false", "FROM_ENV": "e"},
                                  target="final")
    assert app.services["worker"].build == BuildSpec(
        context="/srv/proj", args={"A": "1", "HOME_DIR": "/h"})


@pytest.mark.parametrize(("lines", "expected"), [
    ("    build:\n      dockerfile: ../Dockerfile\n",
     "5:19 services.web.build.dockerfile: dockerfile \"../Dockerfile\" leaves the build "
     "context"),
    ("    build:\n      dockerfile: /etc/Dockerfile\n",
     "5:19 services.web.build.dockerfile: dockerfile \"/etc/Dockerfile\" must be relative"),
    ("    build:\n      context: https://github.com/x/y.git\n",
     "5:16 services.web.build.context: remote build context"),
    ("    build:\n      contxt: .\n", '5:7 services.web.build.contxt: unknown key "contxt"'),
    ("    build: 3\n", "4:12 services.web.build"),
    ("    build: ''\n", "4:12 services.web.build: the build context must be a folder path"),
    ("    command: [x]\n", "4:5 services.web: a service needs `image`, or `build`"),
])
def test_bad_builds_name_line_and_key(lines: str, expected: str) -> None:
    found = problems("name: shop\nservices:\n  web:\n" + lines)
    assert any(p.startswith(expected) for p in found), found


def test_a_relative_context_sent_to_the_api_is_refused() -> None:
    found = problems("name: shop\nservices:\n  web:\n    build: ./web\n", base=None)
    assert any("build context" in p and "must be an absolute path" in p for p in found)


def test_merged_files_read_a_short_build_as_its_context(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text(
        "name: shop\nservices:\n  web:\n    build: ./web\n"
        "  db:\n    build:\n      context: db\n      args: {A: 1}\n")
    (tmp_path / "dev.yml").write_text(
        "services:\n  web:\n    build:\n      dockerfile: dev.Dockerfile\n"
        "  db:\n    build: ./db2\n")
    app = load_files([tmp_path / "compose.yml", tmp_path / "dev.yml"], environ={}).app
    assert app.services["web"].build == BuildSpec(context=str(tmp_path / "web"),
                                                  dockerfile="dev.Dockerfile")
    assert app.services["db"].build == BuildSpec(context=str(tmp_path / "db2"),
                                                 args={"A": "1"})


def test_to_compose_round_trips_build() -> None:
    app = load("name: shop\nservices:\n  web:\n    build:\n      context: web\n"
               "      args: [A=1]\n      target: t\n")
    doc = to_compose(app)
    assert list(doc["services"]["web"])[:2] == ["image", "build"]
    assert load_document(doc).app == app


def test_build_is_not_in_the_container_hash() -> None:
    a = load("name: shop\nservices:\n  web:\n    image: w:1\n    build: ./a\n")
    b = load("name: shop\nservices:\n  web:\n    image: w:1\n    build:\n      context: b\n"
             "      args: [X=1]\n")
    assert a.services["web"].container_hash() == b.services["web"].container_hash()


def test_the_cli_sends_the_built_images_without_build() -> None:
    app = load("name: shop\nservices:\n  web:\n    build: ./web\n  db:\n    image: db:1\n")
    assert [name for name, _ in services_to_build(app)] == ["web"]
    sent = without_builds(app, {"web": "shop-web:latest@sha256:" + "a" * 64})
    assert sent.services["web"].build is None
    assert sent.services["web"].image.endswith("a" * 64)
    assert sent.services["db"] == app.services["db"]
    assert services_to_build(sent) == []
