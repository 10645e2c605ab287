"""The compose corpus (tests/compose_corpus): compose files of the project's own, written
as Docker users write them. Each must load, map to the right objects (the app's spec, and
the Services, Networks and Volumes the controller makes of it), warn about the compose
keys skiff does not implement, and a malformed variant of each is refused with a message
that names the key."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller.reconcilers.app_networks import desired_networks
from controller.reconcilers.app_plan import desired_service
from controller.reconcilers.app_volumes import desired_volumes
from skiff.manifest import LoadResult, ManifestError, load_files
from skiff.models.appspec import AppSpec, Healthcheck, Mount, ServiceSpec
from skiff.models.objects import App, ObjectMeta

CORPUS = Path(__file__).resolve().parents[1] / "compose_corpus"
ENV = {"USER_NAME": "ann", "TAG": "1.36"}


@dataclass
class Mapped:
    """What one file becomes: the app's spec, and the controller's objects of it."""

    app: AppSpec
    warnings: list[str]
    services: dict[str, ServiceSpec] = field(default_factory=dict)  # as the Services hold
    networks: dict[str, Any] = field(default_factory=dict)
    volumes: dict[str, Any] = field(default_factory=dict)

    def svc(self, name: str) -> ServiceSpec:
        return self.app.services[name]

    def warned(self, *paths: str) -> bool:
        return all(any(f" {p}: " in w for w in self.warnings) for p in paths)


def mapped(result: LoadResult) -> Mapped:
    app = App(metadata=ObjectMeta(name=result.app.name, uid="u1"), spec=result.app)
    return Mapped(result.app, result.warnings,
                  {n: desired_service(app, n).spec for n in result.app.services},
                  desired_networks(app), desired_volumes(app))


def mounts(spec: ServiceSpec) -> list[tuple[str, str | None, str, bool]]:
    return [(m.type, m.source, m.target, m.read_only) for m in spec.volumes]


@dataclass(frozen=True)
class Case:
    check: Callable[[Mapped], bool | None]
    bad: tuple[str, str]  # text to replace in the file, and what makes it malformed
    refused: str  # "path: message" fragment of the error
    files: tuple[str, ...] = ()  # more files merged on top


def _seed(m: Mapped) -> None:
    app, mysql = m.services["app"], m.services["mysql"]
    assert m.app.name == "compose_corpus"  # no name: the folder's, as compose does
    assert app.command == ["sh", "-c", "yarn install && yarn run dev"]
    assert [(p.host_ip, p.published, p.target) for p in app.ports] == \
        [("127.0.0.1", 3000, 3000)]
    assert app.working_dir == "/app" and app.environment["MYSQL_HOST"] == "mysql"
    assert mounts(app) == [("bind", str(CORPUS), "/app", False)]
    assert mounts(mysql) == [("volume", "compose_corpus_todo-mysql-data", "/var/lib/mysql",
                              False)]
    assert list(m.volumes) == ["compose_corpus_todo-mysql-data"]
    assert list(m.networks) == ["compose_corpus_default"]
    assert list(app.networks) == ["compose_corpus_default"]


def _cmds(m: Mapped) -> None:
    assert m.svc("string").command == ["echo", "hello world", "single quoted"]
    assert m.svc("list").command == ["sleep", "3600"]
    assert m.svc("entry").entrypoint == ["/bin/sh", "-c"]
    assert m.svc("entry").command == ["echo $HOME"]


def _build_long(m: Mapped) -> None:
    api = m.svc("api")
    assert api.image == "registry.local:5000/built/api:2"
    assert api.build is not None and api.build.context == str(CORPUS / "app")
    assert (api.build.dockerfile, api.build.target) == ("prod.Dockerfile", "build")
    assert api.build.args == {"NODE_ENV": "production", "VERSION": "2"}
    unbuilt = dataclasses.replace(m.services["api"], build=None)
    assert unbuilt.container_hash() == m.services["api"].container_hash()  # not the recipe


def _ports(m: Mapped) -> None:
    assert [(p.host_ip, p.published, p.target, p.protocol) for p in m.svc("dns").ports] == [
        (None, 53, 53, "udp"), ("127.0.0.1", 8053, 53, "tcp"), (None, 9000, 9000, "tcp"),
        (None, 9001, 9001, "tcp"), (None, 8080, 80, "tcp")]


def _volumes_short(m: Mapped) -> None:
    assert mounts(m.services["app"]) == [
        ("volume", "vols_data", "/data", False), ("volume", "vols_config", "/etc/app", True),
        ("bind", str(CORPUS / "app"), "/src", False), ("bind", "/srv/logs", "/logs", False),
        ("volume", None, "/cache", False)]
    assert sorted(m.volumes) == ["vols_config", "vols_data"]


def _volumes_long(m: Mapped) -> None:
    data, src, scratch = m.svc("app").volumes
    assert data.volume is not None and data.volume.nocopy
    assert src.read_only and src.bind is not None and src.bind.create_host_path
    assert scratch.tmpfs is not None and scratch.tmpfs.size == 10 << 20


def _top_volumes(m: Mapped) -> None:
    assert [v.source for v in m.services["db"].volumes] == [
        "topvols_db", "shared", "central-logs"]
    assert sorted(m.volumes) == ["central-logs", "topvols_db"]  # external: not made
    assert m.volumes["topvols_db"].metadata.labels == {"backup": "daily",
                                                       "skiff.app": "topvols"}


def _nets(m: Mapped) -> None:
    api = m.services["api"]
    assert {k: v.aliases for k, v in api.networks.items()} == {
        "nets_back": ["db-client"], "nets_front": ["api.internal"]}
    assert m.networks["nets_back"].spec.internal
    assert m.warned("services.api.networks.back.ipv4_address")


def _deps(m: Mapped) -> None:
    assert m.svc("web").depends_on == {"db": "service_started", "cache": "service_started"}


def _conds(m: Mapped) -> None:
    assert m.svc("web").depends_on == {"db": "service_healthy", "migrate":
                                       "service_completed_successfully",
                                       "cache": "service_started"}
    assert m.svc("db").healthcheck is not None
    assert m.svc("db").healthcheck.test == ["CMD-SHELL", "true"]
    assert not m.warnings  # db has a healthcheck: service_healthy means healthy


def _restart(m: Mapped) -> None:
    assert {n: (s.restart, s.restart_max_retries) for n, s in m.app.services.items()} == {
        "always": ("always", None), "flaky": ("on-failure", 3), "once": ("no", None),
        "unless": ("unless-stopped", None)}


def _deploy(m: Mapped) -> None:
    d = m.svc("web").deploy
    assert (d.replicas, d.labels) == (4, {"tier": "front"})
    assert d.resources is not None and d.resources.limits is not None
    assert (d.resources.limits.cpus, d.resources.limits.memory, d.resources.limits.pids) \
        == (0.5, 128 << 20, 100)
    assert d.resources.reservations is not None
    assert d.resources.reservations.memory == 64 << 20


def _placement(m: Mapped) -> None:
    agent, db = m.svc("agent").deploy, m.svc("db").deploy
    assert agent.mode == "global"
    assert [(c.attribute, c.operator, c.value) for c in agent.placement.constraints] == \
        [("node.labels.role", "==", "edge")]
    assert [p.spread for p in db.placement.preferences] == ["node.labels.zone"]
    assert db.placement.max_replicas_per_node == 1


def _misc(m: Mapped) -> None:
    api = m.svc("api")
    assert api.labels == {"com.example.team": "payments", "com.example.tier": "api"}
    assert (api.user, api.hostname, api.expose) == ("1000:1000", "api-host", ["3000", "9229"])


def _tmpfs(m: Mapped) -> None:
    assert m.svc("one").volumes == [Mount(type="tmpfs", target="/run")]
    assert [(v.target, v.tmpfs.size if v.tmpfs else None) for v in m.svc("many").volumes] \
        == [("/run", None), ("/tmp", 64 << 20)]


def _security(m: Mapped) -> None:
    proxy = m.svc("proxy")
    assert (proxy.init, proxy.read_only, proxy.cap_drop, proxy.cap_add) == \
        (True, True, ["ALL"], ["NET_BIND_SERVICE"])
    assert m.svc("tools").privileged


def _anchors(m: Mapped) -> None:
    api, worker = m.svc("api"), m.svc("worker")
    assert (api.image, api.restart, api.command) == ("busybox", "always", ["api"])
    assert worker.environment == {"LOG_LEVEL": "info", "QUEUE": "jobs"}


def _three(m: Mapped) -> None:
    assert m.svc("app").deploy.replicas == 2
    assert m.svc("proxy").depends_on == {"app": "service_started"}
    assert sorted(m.services["app"].networks) == ["threetier_back", "threetier_front"]
    assert m.services["db"].networks["threetier_back"].aliases == ["database"]
    assert list(m.volumes) == ["threetier_pgdata"]


def _merged(m: Mapped) -> None:
    web = m.svc("web")
    assert (web.image, web.command) == ("myweb:dev", ["serve"])
    assert [(p.published, p.target) for p in web.ports] == [(8443, 443), (9080, 80)]
    assert web.environment == {"MODE": "dev", "LOG": "info"}
    assert [(v.source, v.target) for v in web.volumes] == [
        ("data", "/data"), (str(CORPUS / "app"), "/app-src"), ("/srv/dev", "/src")]
    assert web.cap_add == ["NET_ADMIN", "SYS_PTRACE"]


CASES: dict[str, Case] = {
    "01-seed-todo.yml": Case(_seed, ("MYSQL_DB: todos", "MYSQL_DB: [todos]"),
                             "services.app.environment.MYSQL_DB: "),
    "02-version-and-name.yml": Case(
        lambda m: m.app.name == "shop" and m.warned("version") and None,
        ("name: shop", "name: Shop"), 'name: "Shop" must be lowercase'),
    "03-command-forms.yml": Case(_cmds, ('command: ["sleep", "3600"]', "command: {a: 1}"),
                                 "services.list.command: expected"),
    "04-build-long.yml": Case(_build_long, ("dockerfile: prod.Dockerfile",
                                            "dockerfile: ../prod.Dockerfile"),
                              "services.api.build.dockerfile: dockerfile"),
    "05-build-short.yml": Case(
        lambda m: m.svc("worker").image == "quick-worker" and None,
        ("build: ./app", "buld: ./app"), 'services.worker.buld: unknown key "buld"'),
    "06-ports.yml": Case(_ports, ('"127.0.0.1:8053:53"', '"127.0.0.1:80530:53"'),
                         "services.dns.ports[1]: "),
    "07-env-map-list-file.yml": Case(
        lambda m: m.svc("db").environment == {"LOG_LEVEL": "debug", "DB_USER": "todo",
                                              "DB_PASSWORD": "override", "TZ": "UTC"} or None,
        ("env/db.env", "env/missing.env"), "services.db.env_file[1]: env file"),
    "08-volumes-short.yml": Case(_volumes_short, ("config:/etc/app:ro", "config:etc/app:ro"),
                                 "services.app.volumes[1]: target"),
    "09-volumes-long.yml": Case(_volumes_long, ("type: tmpfs", "type: nfs"),
                                "services.app.volumes[2].type: "),
    "10-top-level-volumes.yml": Case(_top_volumes, ("external: true", "external: maybe"),
                                     "volumes.shared.external: "),
    "11-networks-aliases.yml": Case(_nets, ("aliases: [api.internal]",
                                            "aliases: api.internal"),
                                    "services.api.networks.front.aliases: expected"),
    "12-external-network.yml": Case(
        lambda m: list(m.services["client"].networks) == ["todo-app"] and not m.networks
        and None, ("networks: [todo-app]", "networks: [todo-ap]"),
        'services.client.networks[0]: service "client" refers to undefined network'),
    "13-depends-on-list.yml": Case(_deps, ("- cache\n", "- cach\n"),
                                   'services.web.depends_on.cach: service "web" depends '
                                   'on undefined service "cach"'),
    "14-depends-on-conditions.yml": Case(
        _conds, ("condition: service_started", "condition: service_running"),
        "services.web.depends_on.cache.condition: "),
    "15-healthcheck.yml": Case(
        lambda m: m.svc("web").healthcheck == Healthcheck(
            test=["CMD", "wget", "-q", "-O-", "http://localhost/"], interval="30s",
            timeout="5s", retries=3, start_period="10s") and not m.warnings and None,
        ("  web:\n    image: busybox\n", "  web:\n    image: busybox\n    depends_on: [web]\n"),
        'services.web.depends_on.web: service "web" depends on itself'),
    "16-restart.yml": Case(_restart, ("restart: on-failure:3", "restart: sometimes"),
                           "services.flaky.restart: "),
    "17-deploy-replicated.yml": Case(_deploy, ("memory: 128M", "memory: lots"),
                                     "services.web.deploy.resources.limits.memory: "),
    "18-deploy-global-placement.yml": Case(
        _placement, ("node.labels.role == edge", "node.labels.role ~ edge"),
        "services.agent.deploy.placement.constraints[0]: "),
    "19-deploy-update-config.yml": Case(
        lambda m: m.warned("services.web.deploy.update_config",
                           "services.web.deploy.rollback_config") and
        (m.svc("web").restart, m.svc("web").restart_max_retries) == ("on-failure", 3) and None,
        ("replicas: 2", "replicas: -2"), "services.web.deploy.replicas: "),
    "20-expose-labels-user-hostname.yml": Case(_misc, ("hostname: api-host",
                                                       "hostname: api_host!"),
                                               "services.api.hostname: "),
    "21-stop.yml": Case(
        lambda m: (m.svc("worker").stop_signal, m.svc("worker").stop_grace_period) ==
        ("SIGINT", "1m30s") or None, ("stop_grace_period: 1m30s", "stop_grace_period: soon"),
        "services.worker.stop_grace_period: "),
    "22-tmpfs.yml": Case(_tmpfs, ("/tmp:size=64m", "/tmp:size=64m,exotic"),
                         "services.many.tmpfs[1]: tmpfs option"),
    "23-ulimits-and-friends.yml": Case(
        lambda m: m.warned("services.db.container_name", "services.db.ulimits",
                           "services.db.logging", "services.db.sysctls") and None,
        ("    logging:", "    loging:"), 'services.db.loging: unknown key "loging"'),
    "24-security.yml": Case(_security, ("cap_add: [NET_BIND_SERVICE]",
                                        "cap_add: [NET_BIND_SERVIC]"),
                            "services.proxy.cap_add[0]: "),
    "25-extensions.yml": Case(
        lambda m: list(m.app.services) == ["api"] and not m.warnings and None,
        ('x-notes: "not for skiff"', 'notes: "not for skiff"'),
        'services.api.notes: unknown key "notes"'),
    "26-anchors-merge.yml": Case(_anchors, ("restart: always", "restart: [always]"),
                                 "services.api.restart: expected"),
    "27-profiles.yml": Case(
        lambda m: list(m.app.services) == ["web"] and None,
        ("profiles: [debug]", "profiles: debug"), "services.debug.profiles: expected"),
    "28-interpolation.yml": Case(
        lambda m: (m.svc("web").image, m.svc("web").environment) ==
        ("busybox:1.36", {"GREETING": "hello ann", "PRICE": "$5"}) or None,
        ("${USER_NAME:?set USER_NAME}", "${NAME:?set NAME}"), "set NAME"),
    "29-multi-service-app.yml": Case(_three, ("depends_on: [db]", "depends_on: [proxy]"),
                                     "depends_on makes a cycle: "),
    "30-merge-base.yml": Case(_merged, ('ports: ["8080:80", "8443:443"]',
                                        'ports: {"8080": 80}'),
                              "services.web.ports: expected",
                              files=("30-merge-override.yml",)),
    "31-named-everything.yml": Case(
        lambda m: (list(m.networks) == ["company-net"] and list(m.volumes) ==
        ["company-cache"] and m.services["app"].volumes[0].source == "company-cache" and
        list(m.services["app"].networks) == ["company-net"]) or None,
        ("name: company-net", "name: [company-net]"), "networks.shared.name: expected"),
}
MERGED_ONLY = {"30-merge-override.yml"}


def _load(name: str, case: Case, text: str | None = None,
          env: dict[str, str] | None = None) -> LoadResult:
    first = CORPUS / name
    if text is not None:
        first = CORPUS / f".malformed-{name}"
        first.write_text(text)
    try:
        return load_files([first, *(CORPUS / f for f in case.files)],
                          environ=env if env is not None else ENV)
    finally:
        if text is not None:
            first.unlink()


def test_the_corpus_is_complete() -> None:
    files = {p.name for p in CORPUS.glob("*.yml")} - MERGED_ONLY
    assert len(files) >= 30
    assert files == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_file_maps_to_the_right_objects(name: str) -> None:
    case = CASES[name]
    m = mapped(_load(name, case))
    assert case.check(m) is not False
    for svc, spec in m.services.items():  # what the Services hold: cluster names
        for mount in spec.volumes:
            if mount.type == "volume" and mount.source:
                declared = [v for v in m.app.volumes.values() if v.name == mount.source]
                assert declared, f"{svc}: {mount.source} is not a cluster volume name"
        assert set(spec.networks) <= {n.name for n in m.app.networks.values()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_malformed_variant_is_refused_naming_the_key(name: str) -> None:
    case = CASES[name]
    text = (CORPUS / name).read_text()
    old, new = case.bad
    assert old in text, f"{name}: {old!r} is not in the file"
    with pytest.raises(ManifestError) as info:
        _load(name, case, text.replace(old, new, 1), env={})
    found = [f"{p.path}: {p.message}" for p in info.value.problems]
    assert any(case.refused in line for line in found), found
    assert all(p.line for p in info.value.problems if p.path), found
