"""Good manifests and the AppSpec pieces they load into."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from skiff.manifest import (
    MAX_MANIFEST_BYTES,
    LoadResult,
    ManifestError,
    load_document,
    load_file,
    load_text,
    to_compose,
)
from skiff.models.appspec import (
    BindOptions,
    Ipam,
    IpamConfig,
    Mount,
    PortMapping,
    ResourceLimits,
    ResourceReservations,
    ServiceNetwork,
    TmpfsOptions,
    VolumeOptions,
)

ROOT = Path(__file__).resolve().parents[2]
BASE = Path("/srv/proj")


def load(text: str, env: dict[str, str] | None = None, **kw: Any) -> LoadResult:
    return load_text(textwrap.dedent(text), "app.yml", kw.pop("base_dir", BASE),
                     environ=env or {}, **kw)


def service(body: str, top: str = "", env: dict[str, str] | None = None) -> Any:
    """Load one service ``web`` whose keys are ``body`` (YAML, indented by the caller)."""
    text = "name: app\nservices:\n  web:\n    image: busybox\n"
    text += textwrap.indent(textwrap.dedent(body).strip("\n") + "\n", "    ")
    text += textwrap.dedent(top)
    return load_text(text, "app.yml", BASE, environ=env or {}).app.services["web"]


def test_getting_started_app_loads() -> None:
    result = load_file(ROOT / "manifests" / "hello" / "app.yml", environ={})
    app = result.app
    assert result.warnings == []
    assert app.name == "hello"
    web = app.services["web"]
    assert web.image == "busybox"
    assert web.replicas == 3
    # $$ is compose's literal $: the shell, not skiff, expands $HOSTNAME.
    assert web.command == ["sh", "-c", "while true; do echo hello from $HOSTNAME; sleep 5; done"]
    assert web.networks == {"default": ServiceNetwork()}
    assert app.networks["default"].name == "hello_default"


def test_minimal_service_defaults() -> None:
    web = service("")
    assert (web.command, web.entrypoint, web.environment, web.ports, web.volumes) == (
        None, None, {}, [], [])
    assert web.deploy.replicas == 1 and web.restart is None and not web.privileged


@pytest.mark.parametrize("body, expected", [
    ('command: echo "hello world" \'a b\'', ["echo", "hello world", "a b"]),
    ("command: [sh, -c, 'echo $$HOME']", ["sh", "-c", "echo $HOME"]),
    ('command: ""', []),
    ("command: []", []),
    ("command: null", None),
])
def test_command(body: str, expected: list[str] | None) -> None:
    assert service(body).command == expected


def test_entrypoint_string_is_split_like_a_shell() -> None:
    assert service("entrypoint: /bin/sh -c").entrypoint == ["/bin/sh", "-c"]


@pytest.mark.parametrize("body, env, expected", [
    ("environment: {A: 1, B: true, C: x, D: 1.5, E: ''}", {},
     {"A": "1", "B": "true", "C": "x", "D": "1.5", "E": ""}),
    ("environment: [A=1, B=x=y, C=]", {}, {"A": "1", "B": "x=y", "C": ""}),
    # A bare name takes the value from the environment, or is dropped when unset.
    ("environment: [HOME, NOPE]", {"HOME": "/root"}, {"HOME": "/root"}),
    ("environment: {HOME: null, NOPE: }", {"HOME": "/root"}, {"HOME": "/root"}),
    ("environment: {A: 'yes', B: on, C: 0755}", {}, {"A": "yes", "B": "on", "C": "493"}),
])
def test_environment(body: str, env: dict[str, str], expected: dict[str, str]) -> None:
    assert service(body, env=env).environment == expected


@pytest.mark.parametrize("body, expected", [
    ("labels: {a.b: 1, c: x}", {"a.b": "1", "c": "x"}),
    ("labels: [a.b=1, c]", {"a.b": "1", "c": ""}),
])
def test_labels(body: str, expected: dict[str, str]) -> None:
    assert service(body).labels == expected


@pytest.mark.parametrize("spec, expected", [
    ('"80"', [PortMapping(target=80)]),
    ("80", [PortMapping(target=80)]),
    ("8080:80", [PortMapping(target=80, published=8080)]),  # unquoted: not sexagesimal
    ('"127.0.0.1:8080:80"', [PortMapping(target=80, published=8080, host_ip="127.0.0.1")]),
    ('"127.0.0.1::80"', [PortMapping(target=80, host_ip="127.0.0.1")]),
    ('"[::1]:8080:80"', [PortMapping(target=80, published=8080, host_ip="::1")]),
    ('"53:53/udp"', [PortMapping(target=53, published=53, protocol="udp")]),
    ('"8000-8002:9000-9002"', [PortMapping(target=9000 + i, published=8000 + i)
                               for i in range(3)]),
    ('"7000-7001"', [PortMapping(target=7000), PortMapping(target=7001)]),
    ("{target: 80, published: 8080, protocol: udp, host_ip: 10.0.0.1, mode: host}",
     [PortMapping(target=80, published=8080, protocol="udp", host_ip="10.0.0.1",
                  mode="host")]),
    ('{target: "80", published: "8080"}', [PortMapping(target=80, published=8080)]),
    ("{target: 80}", [PortMapping(target=80)]),
])
def test_ports(spec: str, expected: list[PortMapping]) -> None:
    assert service(f"ports:\n  - {spec}\n").ports == expected


def test_port_range_expands_into_one_mapping_each() -> None:
    assert len(service('ports: ["20000-20999:20000-20999"]').ports) == 1000


VOLUMES = "volumes:\n  data:\n  cache: {driver: local}\n"


@pytest.mark.parametrize("spec, expected", [
    ("data:/var/lib/data", Mount(type="volume", source="data", target="/var/lib/data")),
    ("data:/d:ro", Mount(type="volume", source="data", target="/d", read_only=True)),
    ("data:/d:nocopy", Mount(type="volume", source="data", target="/d",
                             volume=VolumeOptions(nocopy=True))),
    ("./site:/usr/share/html:ro", Mount(type="bind", source="/srv/proj/site",
                                        target="/usr/share/html", read_only=True,
                                        bind=BindOptions(create_host_path=True))),
    ("../up:/up", Mount(type="bind", source="/srv/up", target="/up",
                        bind=BindOptions(create_host_path=True))),
    ("/etc/hosts:/h:rw,z", Mount(type="bind", source="/etc/hosts", target="/h",
                                 bind=BindOptions(create_host_path=True))),
    ("/scratch/", Mount(type="volume", target="/scratch")),
    ("{type: volume, source: cache, target: /c, read_only: true, volume: {nocopy: true}}",
     Mount(type="volume", source="cache", target="/c", read_only=True,
           volume=VolumeOptions(nocopy=True))),
    ("{type: bind, source: ./x, target: /x}",
     Mount(type="bind", source="/srv/proj/x", target="/x", bind=BindOptions())),
    ("{type: bind, source: /x, target: /x, bind: {create_host_path: 'true'}}",
     Mount(type="bind", source="/x", target="/x", bind=BindOptions(create_host_path=True))),
    ("{type: tmpfs, target: /t, tmpfs: {size: 64m, mode: '1777'}}",
     Mount(type="tmpfs", target="/t", tmpfs=TmpfsOptions(size=64 * 2**20, mode=0o1777))),
    ("{type: tmpfs, target: /t, tmpfs: {size: 1000}}",
     Mount(type="tmpfs", target="/t", tmpfs=TmpfsOptions(size=1000))),
    ("{type: tmpfs, target: /t}", Mount(type="tmpfs", target="/t")),
])
def test_volumes(spec: str, expected: Mount) -> None:
    assert service(f"volumes:\n  - {spec}\n", top=VOLUMES).volumes == [expected]


def test_networks_list_map_and_default() -> None:
    top = "networks:\n  front:\n  back: {driver: bridge}\n"
    web = service("networks:\n  front:\n  back: {aliases: [db, db.internal], "
                  "ipv4_address: 10.1.0.5}\n", top=top)
    # ipv4_address is dropped (with a warning: see test_ipv4_address_is_ignored_loudly).
    assert web.networks == {"front": ServiceNetwork(),
                            "back": ServiceNetwork(aliases=["db", "db.internal"])}
    assert service("networks: [front, default]", top=top).networks == {
        "front": ServiceNetwork(), "default": ServiceNetwork()}
    assert service("networks: []").networks == {"default": ServiceNetwork()}


def test_ipv4_address_is_ignored_loudly() -> None:
    result = load_document({"name": "a", "services": {"web": {
        "image": "x", "networks": {"default": {"ipv4_address": "10.1.0.5"}}}}},
        source="app.yml")
    assert result.app.services["web"].networks["default"].ipv4_address is None
    assert any("ipv4_address is ignored" in str(w) for w in result.warnings), result.warnings


def test_default_network_appears_only_when_used() -> None:
    app = load("""
        name: shop
        services:
          web: {image: nginx}
          db: {image: postgres, networks: [back]}
        networks: {back: }
    """).app
    assert {k: v.name for k, v in app.networks.items()} == {
        "back": "shop_back", "default": "shop_default"}
    only_back = load("""
        name: shop
        services: {db: {image: postgres, networks: [back]}}
        networks: {back: }
    """).app
    assert set(only_back.networks) == {"back"}


def test_top_level_networks_and_volumes() -> None:
    app = load("""
        name: shop
        services: {web: {image: nginx}}
        networks:
          front:
            driver: bridge
            driver_opts: {mtu: 1400}
            ipam: {driver: default, config: [{subnet: 10.8.0.0/24, gateway: 10.8.0.1}]}
            internal: true
            attachable: "yes"
            labels: [team=web]
          outside: {external: true}
          named: {name: custom}
        volumes:
          data:
          old: {external: true, name: legacy}
          fast: {driver: local, driver_opts: {type: tmpfs}, labels: {tier: 1}}
    """).app
    front = app.networks["front"]
    assert (front.name, front.driver, front.driver_opts, front.internal, front.attachable,
            front.labels) == ("shop_front", "bridge", {"mtu": "1400"}, True, True,
                              {"team": "web"})
    assert front.ipam == Ipam(driver="default",
                              config=[IpamConfig(subnet="10.8.0.0/24", gateway="10.8.0.1")])
    assert app.networks["outside"].name == "outside" and app.networks["outside"].external
    assert app.networks["named"].name == "custom"
    assert app.volumes["data"].name == "shop_data"
    assert (app.volumes["old"].name, app.volumes["old"].external) == ("legacy", True)
    assert app.volumes["fast"].driver_opts == {"type": "tmpfs"}
    assert app.volumes["fast"].labels == {"tier": "1"}


def test_deploy_and_resources() -> None:
    web = service("""
        deploy:
          replicas: 0
          labels: {a: b}
          resources:
            limits: {cpus: "1.5", memory: 1g, pids: 64}
            reservations: {cpus: 0.25, memory: 1024k}
    """)
    assert web.deploy.replicas == 0 and web.deploy.labels == {"a": "b"}
    assert web.deploy.resources is not None
    assert web.deploy.resources.limits == ResourceLimits(cpus=1.5, memory=2**30, pids=64)
    assert web.deploy.resources.reservations == ResourceReservations(cpus=0.25,
                                                                     memory=2**20)


@pytest.mark.parametrize("body, field, expected", [
    ("restart: always", "restart", "always"),
    ("restart: unless-stopped", "restart", "unless-stopped"),
    ("restart: 'no'", "restart", "no"),
    ("stop_signal: term", "stop_signal", "SIGTERM"),
    ("stop_signal: SIGUSR1", "stop_signal", "SIGUSR1"),
    ("stop_grace_period: 90s", "stop_grace_period", "1m30s"),
    ("stop_grace_period: 1.5s", "stop_grace_period", "1.5s"),
    ("stop_grace_period: 500ms", "stop_grace_period", "500ms"),
    ("cap_add: [net_admin, CAP_SYS_TIME, NET_ADMIN]", "cap_add", ["NET_ADMIN", "SYS_TIME"]),
    ("cap_drop: [ALL]", "cap_drop", ["ALL"]),
    ("privileged: true", "privileged", True),
    ("read_only: 'true'", "read_only", True),
    ("init: false", "init", False),
    ("working_dir: /app", "working_dir", "/app"),
    ("user: 1000", "user", "1000"),
    ("user: 'app:app'", "user", "app:app"),
    ("hostname: web-1", "hostname", "web-1"),
])
def test_service_scalars(body: str, field: str, expected: object) -> None:
    assert getattr(service(body), field) == expected


def test_restart_on_failure_keeps_policy_and_max_retries() -> None:
    result = load("""
        name: app
        services:
          web: {image: x, restart: "on-failure:5"}
    """)
    web = result.app.services["web"]
    assert (web.restart, web.restart_max_retries) == ("on-failure", 5)
    assert result.warnings == []
    assert to_compose(result.app)["services"]["web"]["restart"] == "on-failure:5"


def test_version_is_accepted_with_a_warning() -> None:
    result = load('version: "3.8"\nname: app\nservices: {web: {image: x}}\n')
    assert result.warnings == ["app.yml:1:10 version: the top-level version key is "
                               "obsolete and ignored"]


def test_extension_keys_are_allowed_and_ignored() -> None:
    app = load("""
        x-common: &common {image: busybox, x-note: hi}
        name: app
        services:
          web:
            <<: *common
        networks: {front: {x-owner: me}}
        volumes: {data: {x-backup: true}}
    """).app
    assert app.services["web"].image == "busybox"


def test_app_name_from_folder_and_project_name_override(tmp_path: Path) -> None:
    folder = tmp_path / "My Shop.v2"
    folder.mkdir()
    manifest = folder / "app.yml"
    manifest.write_text("services: {web: {image: x}}\n")
    assert load_file(manifest, environ={}).app.name == "myshopv2"
    assert load_file(manifest, environ={}, project_name="other").app.name == "other"
    manifest.write_text("name: fromfile\nservices: {web: {image: x}}\n")
    assert load_file(manifest, environ={}).app.name == "fromfile"
    assert load_file(manifest, environ={}, project_name="cli").app.name == "cli"


def test_load_file_reads_bytes_with_a_bom(tmp_path: Path) -> None:
    manifest = tmp_path / "app.yml"
    manifest.write_bytes(b"\xef\xbb\xbfname: bom\nservices: {web: {image: x}}\n")
    assert load_file(manifest, environ={}).app.name == "bom"
    assert load_text(manifest.read_bytes(), "b", None, {}).app.name == "bom"


def test_file_at_the_size_limit_loads_and_one_byte_more_does_not(tmp_path: Path) -> None:
    head = "name: big\nservices: {web: {image: x}}\n"
    manifest = tmp_path / "app.yml"
    manifest.write_text(head + "#" * (MAX_MANIFEST_BYTES - len(head) - 1) + "\n")
    assert load_file(manifest, environ={}).app.name == "big"
    manifest.write_text(head + "#" * (MAX_MANIFEST_BYTES - len(head)) + "\n")
    with pytest.raises(ManifestError, match="larger than the limit of 1048576 bytes"):
        load_file(manifest, environ={})


def test_load_document_takes_what_to_compose_makes() -> None:
    app = load("""
        name: app
        services:
          web:
            image: nginx
            command: [echo, "$$NOT_INTERPOLATED"]
            ports: ["8080:80"]
            volumes: [data:/d, ./site:/s]
        volumes: {data: }
    """).app
    doc = to_compose(app)
    assert doc["services"]["web"]["command"] == ["echo", "$NOT_INTERPOLATED"]
    assert doc["services"]["web"]["volumes"][1]["source"] == "/srv/proj/site"
    again = load_document(doc)
    assert again.app == app and again.warnings == []


def test_published_schema_is_valid_and_accepts_normalised_output() -> None:
    schema = json.loads((ROOT / "schemas" / "manifest.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    app = load_file(ROOT / "manifests" / "hello" / "app.yml", environ={}).app
    jsonschema.validate(to_compose(app), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"services": {"web": {"image": "x", "colour": 1}}}, schema)
