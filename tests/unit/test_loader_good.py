"""Compose files that load, and what they mean once normalised."""

from __future__ import annotations

from pathlib import Path

import pytest

from skiff.manifest import load_document, load_file, load_text, to_compose
from skiff.models.appspec import BindOptions, Mount, PortMapping, ServiceNetwork

ROOT = Path(__file__).resolve().parents[2]


def load(text: str, environ: dict[str, str] | None = None, base: Path | None = None):
    return load_text(text, "app.yml", base or Path("/srv/app"), environ or {})


def test_hello_manifest():
    result = load_file(ROOT / "manifests" / "hello" / "app.yml", environ={})
    web = result.app.services["web"]
    assert result.app.name == "hello"
    assert web.image == "busybox" and web.replicas == 3
    assert web.command == ["sh", "-c", "while true; do echo hello from $HOSTNAME; sleep 5; done"]
    assert web.networks == {"default": ServiceNetwork()}
    assert result.app.networks["default"].name == "hello_default"
    assert result.warnings == []


def test_a_full_service():
    app = load("""
name: shop
services:
  web:
    image: registry.local/web:1.2
    command: python -m http.server "8080"
    entrypoint: ["/init"]
    environment:
      DEBUG: true
      WORKERS: 4
      EMPTY:
    working_dir: /srv
    user: "1000:1000"
    hostname: web-1
    labels: [team=shop, tier=front]
    ports: ["8080:80", "127.0.0.1:9090:90/udp", {target: 443, published: "8443", mode: host}]
    volumes:
      - data:/var/lib/data:ro
      - ./static:/srv/static
      - /tmp
      - {type: tmpfs, target: /run, tmpfs: {size: 64m}}
    networks:
      front: {aliases: [shop-web]}
    deploy:
      replicas: 2
      resources:
        limits: {cpus: "0.5", memory: 512m, pids: 100}
        reservations: {memory: 128M}
    restart: on-failure:3
    stop_signal: TERM
    stop_grace_period: 1m30s
    cap_add: [net_admin]
    cap_drop: [CAP_MKNOD]
    read_only: true
    init: "true"
networks:
  front:
volumes:
  data:
    labels: {keep: "yes"}
""").app
    web = app.services["web"]
    assert web.command == ["python", "-m", "http.server", "8080"]
    assert web.entrypoint == ["/init"]
    assert web.environment == {"DEBUG": "true", "WORKERS": "4"}  # EMPTY is unset: dropped
    assert web.labels == {"team": "shop", "tier": "front"}
    assert web.ports == [
        PortMapping(target=80, published=8080),
        PortMapping(target=90, published=9090, protocol="udp", host_ip="127.0.0.1"),
        PortMapping(target=443, published=8443, mode="host"),
    ]
    assert web.volumes[0] == Mount(type="volume", source="data", target="/var/lib/data",
                                   read_only=True)
    assert web.volumes[1] == Mount(type="bind", source="/srv/app/static", target="/srv/static",
                                   bind=BindOptions(create_host_path=True))
    assert web.volumes[2] == Mount(type="volume", target="/tmp")
    assert web.volumes[3].tmpfs is not None and web.volumes[3].tmpfs.size == 64 * 2**20
    assert web.networks == {"front": ServiceNetwork(aliases=["shop-web"])}
    assert web.deploy.replicas == 2
    assert web.deploy.resources.limits.cpus == 0.5
    assert web.deploy.resources.limits.memory == 512 * 2**20
    assert web.deploy.resources.reservations.memory == 128 * 2**20
    assert (web.restart, web.restart_max_retries, web.stop_signal, web.stop_grace_period) == (
        "on-failure", 3, "SIGTERM", "1m30s")
    assert (web.cap_add, web.cap_drop) == (["NET_ADMIN"], ["MKNOD"])
    assert web.read_only and web.init and not web.privileged
    assert app.networks["front"].name == "shop_front"
    assert "default" not in app.networks  # no service is on it
    assert app.volumes["data"].name == "shop_data"
    assert app.volumes["data"].labels == {"keep": "yes"}


@pytest.mark.parametrize("short, expected", [
    ("80", [PortMapping(target=80)]),
    (8080, [PortMapping(target=8080)]),
    ("22:22", [PortMapping(target=22, published=22)]),  # not YAML 1.1 base 60
    ("127.0.0.1::80", [PortMapping(target=80, host_ip="127.0.0.1")]),
    ("8000-8001:9000-9001", [PortMapping(target=9000, published=8000),
                             PortMapping(target=9001, published=8001)]),
    ("53:53/udp", [PortMapping(target=53, published=53, protocol="udp")]),
])
def test_port_short_syntax(short, expected):
    # Unquoted on purpose: 22:22 must not become YAML 1.1's base-60 number 1342.
    app = load(f"services:\n  s:\n    image: x\n    ports: [{short}]\n").app
    assert app.services["s"].ports == expected


def test_environment_list_takes_unvalued_names_from_the_environment():
    app = load("services:\n  s:\n    image: x\n    environment: [A=1, B, C]\n",
               environ={"B": "from-env"}).app
    assert app.services["s"].environment == {"A": "1", "B": "from-env"}


def test_interpolation_and_dotenv(tmp_path):
    (tmp_path / ".env").write_text("# comment\nexport TAG=1.0\nREPLICAS='2'\nNAME=\"dev\"\n")
    (tmp_path / "app.yml").write_text(
        "name: ${NAME}\nservices:\n  s:\n    image: busybox:${TAG:-latest}\n"
        "    command: echo $$HOME ${GREETING:-hi}\n"
        "    deploy:\n      replicas: ${REPLICAS}\n")
    result = load_file(tmp_path / "app.yml", environ={"TAG": "2.0"})
    s = result.app.services["s"]
    assert result.app.name == "dev"
    assert s.image == "busybox:2.0"  # the environment wins over .env
    assert s.command == ["echo", "$HOME", "hi"]
    assert s.replicas == 2


def test_unset_variable_warns_and_is_empty():
    result = load("services:\n  s:\n    image: busybox${SUFFIX}\n")
    assert result.app.services["s"].image == "busybox"
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("app.yml:3:")
    assert 'variable "SUFFIX" is not set' in result.warnings[0]


def test_anchors_merge_keys_and_extensions():
    app = load("""
x-common: &common
  image: busybox
  environment: {A: "1"}
  deploy: {replicas: 2}
services:
  a:
    <<: *common
  b:
    <<: *common
    image: alpine
    x-note: kept out
""").app
    assert app.services["a"].image == "busybox" and app.services["a"].replicas == 2
    assert app.services["b"].image == "alpine"
    assert app.services["b"].environment == {"A": "1"}


def test_name_comes_from_the_folder_when_missing(tmp_path):
    folder = tmp_path / "My_Project.v2"
    folder.mkdir()
    (folder / "compose.yaml").write_text("services:\n  s:\n    image: x\n")
    assert load_file(folder / "compose.yaml", environ={}).app.name == "my_projectv2"
    assert load_file(folder / "compose.yaml", environ={}, project_name="other").app.name \
        == "other"


def test_version_key_is_obsolete_but_accepted():
    result = load("version: '3.8'\nservices:\n  s:\n    image: x\n")
    assert "obsolete" in result.warnings[0]


def test_normalised_output_loads_back_the_same():
    text = (ROOT / "tests" / "unit" / "test_loader_good.py").read_text()
    start = text.index('name: shop')
    body = text[start:text.index('""").app', start)]
    app = load(body).app
    assert load_document(to_compose(app)).app == app
