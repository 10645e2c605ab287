"""Compose files as Docker users have them: keys skiff does not implement are named in a
warning (an error with strict), several files merge as compose merges them, and
env_file, tmpfs, expose, profiles and depends_on mean what compose says."""

from __future__ import annotations

from pathlib import Path

import pytest

from skiff.manifest import ManifestError, load_files, load_text
from skiff.manifest.merge import merge_documents
from skiff.models.appspec import Mount, TmpfsOptions


def load(text: str, env: dict[str, str] | None = None, base: Path | None = Path("/srv"),
         strict: bool = False):  # type: ignore[no-untyped-def]
    return load_text(text, "compose.yml", base, environ=env or {}, strict=strict)


def problems(text: str, **kw: object) -> list[str]:
    with pytest.raises(ManifestError) as info:
        load(text, **kw)  # type: ignore[arg-type]
    return [f"{p.line}:{p.column} {p.path}: {p.message}" for p in info.value.problems]


UNSUPPORTED = """\
name: shop
services:
  web:
    image: busybox
    container_name: web1
    ulimits: {nofile: 1024}
    deploy:
      endpoint_mode: dnsrr
secrets:
  key: {file: ./key}
"""


def test_compose_keys_skiff_lacks_are_warned_with_their_place() -> None:
    result = load(UNSUPPORTED)
    assert result.warnings == [
        "compose.yml:9:1 secrets: not supported by skiff; ignored",
        "compose.yml:5:5 services.web.container_name: ignored: a service has replicas, "
        "named <app>/<service>.<slot>",
        "compose.yml:6:5 services.web.ulimits: not supported by skiff; ignored",
        "compose.yml:8:7 services.web.deploy.endpoint_mode: ignored: published ports go "
        "through the routing mesh (vip)",
    ]
    assert result.app.services["web"].image == "busybox"


def test_strict_makes_them_errors_and_a_typo_is_always_one() -> None:
    found = problems(UNSUPPORTED, strict=True)
    assert "5:5 services.web.container_name: ignored: a service has replicas, named " \
           "<app>/<service>.<slot> (--strict)" in found
    assert len(found) == 4
    typo = problems("name: x\nservices:\n  web:\n    image: busybox\n    enviroment: {}\n")
    assert typo == ['5:5 services.web.enviroment: unknown key "enviroment"']


def test_merge_follows_compose_rules() -> None:
    base = {"services": {"web": {
        "image": "app:1", "command": ["run", "--slow"], "environment": ["A=1", "B=2"],
        "ports": ["8080:80", "9000:9000/udp"], "volumes": ["data:/data", "./src:/src"],
        "cap_add": ["NET_ADMIN"], "networks": ["front"], "labels": {"x": "1"}}}}
    override = {"services": {"web": {
        "image": "app:2", "command": ["run"], "environment": {"B": "3", "C": "4"},
        "ports": ["8081:80"], "volumes": ["./dev:/src"], "cap_add": ["SYS_TIME", "NET_ADMIN"],
        "networks": {"back": {"aliases": ["api"]}}}}}
    web = merge_documents([base, override])["services"]["web"]
    assert web["image"] == "app:2" and web["command"] == ["run"]
    assert web["environment"] == {"A": "1", "B": "3", "C": "4"}
    assert web["ports"] == ["9000:9000/udp", "8081:80"]
    assert web["volumes"] == ["data:/data", "./dev:/src"]
    assert web["cap_add"] == ["NET_ADMIN", "SYS_TIME"]
    assert web["networks"] == {"front": None, "back": {"aliases": ["api"]}}
    assert web["labels"] == {"x": "1"}
    assert base["services"]["web"]["image"] == "app:1"  # inputs untouched


def test_several_files_load_as_one_and_problems_name_their_file(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text(
        "name: shop\nservices:\n  web:\n    image: app:1\n    ports: ['8080:80']\n")
    (tmp_path / "dev.yml").write_text(
        "services:\n  web:\n    image: app:dev\n    volumes: ['./src:/src']\n")
    app = load_files([tmp_path / "compose.yml", tmp_path / "dev.yml"], environ={}).app
    web = app.services["web"]
    assert web.image == "app:dev" and web.ports[0].target == 80
    assert web.volumes[0].source == str(tmp_path / "src")
    (tmp_path / "bad.yml").write_text("services:\n  web:\n    ports: ['99999:80']\n")
    with pytest.raises(ManifestError) as info:
        load_files([tmp_path / "compose.yml", tmp_path / "bad.yml"], environ={})
    where = info.value.problems[0]
    assert (where.source, where.line) == (str(tmp_path / "bad.yml"), 3)


def test_env_file_tmpfs_and_expose(tmp_path: Path) -> None:
    (tmp_path / "web.env").write_text("# defaults\nA=1\nB=from-file\n")
    text = """\
name: shop
services:
  web:
    image: busybox
    env_file: [web.env, {path: missing.env, required: false}]
    environment: {B: from-environment}
    tmpfs: ["/run:size=64m", /cache]
    expose: ["3000", 9000]
"""
    web = load(text, base=tmp_path).app.services["web"]
    assert web.environment == {"A": "1", "B": "from-environment"}
    assert web.volumes == [
        Mount(type="tmpfs", target="/run", tmpfs=TmpfsOptions(size=64 << 20)),
        Mount(type="tmpfs", target="/cache")]
    assert web.expose == ["3000", "9000"]
    found = problems(text.replace("required: false", "required: true"), base=tmp_path)
    assert any("services.web.env_file[1]: env file" in p and "not found" in p
               for p in found)
    clash = problems("name: x\nservices:\n  a:\n    image: busybox\n"
                     "    volumes: [v:/run]\n    tmpfs: /run\nvolumes: {v: {}}\n")
    assert clash == ["6:12 services.a.tmpfs: target /run is already mounted by volumes"]


def test_profiles_switch_services_on() -> None:
    text = ("name: x\nservices:\n  web: {image: busybox}\n"
            "  debug: {image: busybox, profiles: [debug, all]}\n")
    assert sorted(load(text).app.services) == ["web"]
    assert sorted(load(text, env={"COMPOSE_PROFILES": "ops,all"}).app.services) == \
        ["debug", "web"]


def test_depends_on_forms_and_mistakes() -> None:
    app = load("""\
name: x
services:
  web: {image: busybox, depends_on: [db]}
  db:
    image: busybox
    depends_on:
      migrate: {condition: service_completed_successfully}
  migrate: {image: busybox}
""").app
    assert app.services["web"].depends_on == {"db": "service_started"}
    assert app.services["db"].depends_on == {"migrate": "service_completed_successfully"}
    assert problems("name: x\nservices:\n  web: {image: busybox, depends_on: [nope]}\n") == [
        '3:37 services.web.depends_on.nope: service "web" depends on undefined service '
        '"nope"']
    cycle = problems("name: x\nservices:\n  a: {image: busybox, depends_on: [b]}\n"
                     "  b: {image: busybox, depends_on: [a]}\n")
    assert cycle and cycle[0].endswith("depends_on makes a cycle: a -> b -> a")
    off = problems("name: x\nservices:\n  a: {image: busybox, depends_on: [b]}\n"
                   "  b: {image: busybox, profiles: [p]}\n")
    assert any("which no active profile enables" in p for p in off)
    bad = problems("name: x\nservices:\n  a: {image: busybox, depends_on: {b: "
                   "{condition: service_ready}}}\n  b: {image: busybox}\n")
    assert bad and "service_ready" in bad[0]
    healthy = load("name: x\nservices:\n  a: {image: busybox, depends_on: {b: "
                   "{condition: service_healthy}}}\n  b: {image: busybox}\n")
    assert any("b has no healthcheck here: unless its image has one, service_healthy "
               "waits only until it runs" in w for w in healthy.warnings)


def test_swarm_restart_policy_becomes_restart_and_wins() -> None:
    def restart(policy: str):  # type: ignore[no-untyped-def]
        web = load("name: x\nservices:\n  web:\n    image: busybox\n    restart: always\n"
                   f"    deploy:\n      restart_policy: {policy}\n").app.services["web"]
        return web.restart, web.restart_max_retries
    assert restart("{condition: none}") == ("no", None)
    assert restart("{condition: on-failure, max_attempts: 5}") == ("on-failure", 5)
    assert restart("{condition: any}") == ("always", None)
    assert restart("{}") == ("always", None)
    warned = load("name: x\nservices:\n  web:\n    image: busybox\n    deploy:\n"
                  "      restart_policy: {condition: any, delay: 5s}\n").warnings
    assert any("delay is ignored" in w for w in warned)
    assert problems("name: x\nservices:\n  web:\n    image: busybox\n    deploy:\n"
                    "      restart_policy: {condition: sometimes}\n")[0].startswith(
        "6:35 services.web.deploy.restart_policy.condition")
