"""The compose corpus (tests/compose_corpus): compose files of the project's own, written
as Docker users write them. Each must load, map to the right objects (the app's spec, and
the Services, Networks and Volumes the controller makes of it), warn about exactly the
compose keys skiff does not implement, and a malformed variant of each is refused with a
problem that names the file, the line and the key.

One entry of CASES per file: adding a file is adding an entry."""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller.reconcilers.app_networks import desired_networks
from controller.reconcilers.app_plan import desired_service
from controller.reconcilers.app_volumes import desired_volumes
from skiff.manifest import LoadResult, ManifestError, load_files, load_text
from skiff.models.appspec import (
    AppSpec,
    Healthcheck,
    Mount,
    ServiceNetwork,
    ServiceSpec,
    UpdateConfig,
)
from skiff.models.objects import App, Network, ObjectMeta, Service, Volume

CORPUS = Path(__file__).resolve().parents[1] / "compose_corpus"
ENV: Mapping[str, str] = {"USER_NAME": "ann", "TAG": "1.36"}
UID = "u1"
# ulimits is being implemented: until ServiceSpec carries it, it is warned and ignored.
ULIMITS = "ulimits" in {f.name for f in dataclasses.fields(ServiceSpec)}
WARNING = re.compile(r"(?P<source>.+?):(?P<line>\d+):(?P<column>\d+) (?P<path>\S+): \S")


@dataclass
class Mapped:
    """What one file becomes: the app's spec, and the controller's objects of it."""

    app: AppSpec
    warnings: list[str]
    services: dict[str, Service]
    networks: dict[str, Network]
    volumes: dict[str, Volume]

    def svc(self, name: str) -> ServiceSpec:
        """A service as the app's spec has it (compose keys for networks and volumes)."""
        return self.app.services[name]

    def held(self, name: str) -> ServiceSpec:
        """A service as its Service object holds it (cluster names)."""
        return self.services[name].spec


def mapped(result: LoadResult) -> Mapped:
    app = App(metadata=ObjectMeta(name=result.app.name, uid=UID), spec=result.app)
    return Mapped(result.app, result.warnings,
                  {n: desired_service(app, n) for n in result.app.services},
                  desired_networks(app), desired_volumes(app))


def mounts(spec: ServiceSpec) -> list[tuple[str, str | None, str, bool]]:
    return [(m.type, m.source, m.target, m.read_only) for m in spec.volumes]


def want(get: Callable[[Mapped], Any], expected: Any) -> Callable[[Mapped], None]:
    """A check that what ``get`` reads equals ``expected``."""
    def check(m: Mapped) -> None:
        assert get(m) == expected
    return check


@dataclass(frozen=True)
class Case:
    check: Callable[[Mapped], None]  # asserts; returns nothing
    bad: tuple[str, str]  # text of this file to replace, and what makes it malformed
    refused: tuple[str, str]  # the problem's key path, and a fragment of its message
    warns: frozenset[str] = frozenset()  # key paths of the warnings, exactly
    files: tuple[str, ...] = ()  # every file loaded, in order, when not this one alone
    env: Mapping[str, str] = field(default_factory=lambda: ENV)


def _seed(m: Mapped) -> None:
    app, mysql = m.svc("app"), m.svc("mysql")
    assert m.app.name == "compose_corpus"  # no name: the folder's, as compose does
    assert (app.image, mysql.image) == ("node:18-alpine", "mysql:8.0")
    assert app.command == ["sh", "-c", "yarn install && yarn run dev"]
    assert [(p.host_ip, p.published, p.target, p.protocol) for p in app.ports] == \
        [("127.0.0.1", 3000, 3000, "tcp")]
    assert app.working_dir == "/app"
    assert app.environment == {"MYSQL_HOST": "mysql", "MYSQL_USER": "root",
                               "MYSQL_PASSWORD": "secret", "MYSQL_DB": "todos"}
    assert mounts(app) == [("bind", str(CORPUS), "/app", False)]
    assert mounts(mysql) == [("volume", "todo-mysql-data", "/var/lib/mysql", False)]
    assert mounts(m.held("mysql")) == [
        ("volume", "compose_corpus_todo-mysql-data", "/var/lib/mysql", False)]
    assert list(m.volumes) == ["compose_corpus_todo-mysql-data"]
    assert app.networks == {"default": ServiceNetwork()}
    assert list(m.networks) == ["compose_corpus_default"]
    assert list(m.held("app").networks) == list(m.held("mysql").networks) == \
        ["compose_corpus_default"]


def _version_name(m: Mapped) -> None:
    assert (m.app.name, list(m.app.services), m.svc("web").image) == \
        ("shop", ["web"], "nginx:1.25")
    assert list(m.networks) == ["shop_default"]
    assert m.services["web"].metadata.app == "shop"


def _cmds(m: Mapped) -> None:
    assert m.svc("string").command == ["echo", "hello world", "single quoted"]
    assert m.svc("list").command == ["sleep", "3600"]
    assert (m.svc("list").entrypoint, m.svc("string").entrypoint) == (None, None)
    assert m.svc("entry").entrypoint == ["/bin/sh", "-c"]
    assert m.svc("entry").command == ["echo $HOME"]  # $$ is a literal $
    assert m.held("string").command == m.svc("string").command


def _build_long(m: Mapped) -> None:
    api = m.svc("api")
    assert api.image == "registry.local:5000/built/api:2"
    assert api.build is not None and api.build.context == str(CORPUS / "app")
    assert (api.build.dockerfile, api.build.target) == ("prod.Dockerfile", "build")
    assert api.build.args == {"NODE_ENV": "production", "VERSION": "2"}
    held = m.held("api")
    assert held.build == api.build
    unbuilt = dataclasses.replace(held, build=None)
    assert unbuilt.container_hash() == held.container_hash()  # not the recipe


def _build_short(m: Mapped) -> None:
    worker = m.svc("worker")
    assert worker.image == "quick-worker"  # <project>-<service>, as compose v2 names it
    assert worker.build is not None
    assert (worker.build.context, worker.build.dockerfile, worker.build.args,
            worker.build.target) == (str(CORPUS / "app"), "Dockerfile", {}, None)
    assert worker.command == ["true"]


def _ports(m: Mapped) -> None:
    want_ports = [(None, 53, 53, "udp", "ingress"), ("127.0.0.1", 8053, 53, "tcp", "ingress"),
                  (None, 9000, 9000, "tcp", "ingress"), (None, 9001, 9001, "tcp", "ingress"),
                  (None, 8080, 80, "tcp", "ingress")]
    for spec in (m.svc("dns"), m.held("dns")):
        assert [(p.host_ip, p.published, p.target, p.protocol, p.mode)
                for p in spec.ports] == want_ports


def _env(m: Mapped) -> None:
    # env_file in order (common, then db), environment winning over both.
    assert m.svc("db").environment == {"LOG_LEVEL": "debug", "DB_USER": "todo",
                                       "DB_PASSWORD": "override", "TZ": "UTC"}
    assert m.held("db").environment == m.svc("db").environment


def _volumes_short(m: Mapped) -> None:
    assert mounts(m.svc("app"))[:2] == [("volume", "data", "/data", False),
                                        ("volume", "config", "/etc/app", True)]
    assert mounts(m.held("app")) == [
        ("volume", "vols_data", "/data", False), ("volume", "vols_config", "/etc/app", True),
        ("bind", str(CORPUS / "app"), "/src", False), ("bind", "/srv/logs", "/logs", False),
        ("volume", None, "/cache", False)]
    assert sorted(m.volumes) == ["vols_config", "vols_data"]  # not the anonymous one


def _volumes_long(m: Mapped) -> None:
    assert mounts(m.held("app")) == [
        ("volume", "longvols_data", "/data", False),
        ("bind", str(CORPUS / "app"), "/src", True), ("tmpfs", None, "/scratch", False)]
    data, src, scratch = m.held("app").volumes
    assert data.volume is not None and data.volume.nocopy
    assert src.bind is not None and src.bind.create_host_path
    assert scratch.tmpfs is not None and scratch.tmpfs.size == 10 << 20
    assert list(m.volumes) == ["longvols_data"]


def _top_volumes(m: Mapped) -> None:
    assert [v.source for v in m.held("db").volumes] == [
        "topvols_db", "shared", "central-logs", "topvols_uploads"]
    vols = m.app.volumes
    assert (vols["db"].driver, vols["shared"].external, vols["shared"].name,
            vols["logs"].name) == ("local", True, "shared", "central-logs")
    # external: used as it is, never made
    assert sorted(m.volumes) == ["central-logs", "topvols_db", "topvols_uploads"]
    assert m.volumes["topvols_db"].metadata.labels == {"backup": "daily",
                                                       "skiff.app": "topvols"}
    uploads = m.volumes["topvols_uploads"]
    assert (uploads.spec.driver, uploads.spec.driver_opts) == ("local", {
        "type": "nfs", "o": "addr=10.40.0.199,nolock,soft,rw", "device": ":/docker/uploads"})
    assert (uploads.metadata.app, uploads.metadata.owner_uid) == ("topvols", UID)


def _nets(m: Mapped) -> None:
    assert {k: v.aliases for k, v in m.held("api").networks.items()} == {
        "nets_back": ["db-client"], "nets_front": ["api.internal"]}
    assert m.held("api").networks["nets_back"].ipv4_address is None  # warned, dropped
    back, front = m.networks["nets_back"].spec, m.networks["nets_front"].spec
    assert (back.internal, front.internal) == (True, False)
    assert back.ipam is not None and [c.subnet for c in back.ipam.config] == ["10.9.0.0/24"]
    assert front.ipam is None
    assert sorted(m.networks) == ["nets_back", "nets_front"]  # no default: nobody is on it


def _external_net(m: Mapped) -> None:
    net = m.app.networks["todo-app"]
    assert (net.external, net.name) == (True, "todo-app")
    assert list(m.held("client").networks) == ["todo-app"]
    assert m.networks == {}  # external: joined, not made


def _deps(m: Mapped) -> None:
    assert m.svc("web").depends_on == {"db": "service_started", "cache": "service_started"}
    assert (m.svc("db").depends_on, m.held("web").depends_on) == ({}, m.svc("web").depends_on)


def _conds(m: Mapped) -> None:
    assert m.svc("web").depends_on == {"db": "service_healthy", "migrate":
                                       "service_completed_successfully",
                                       "cache": "service_started"}
    assert m.svc("migrate").restart == "no"
    db = m.svc("db").healthcheck  # so service_healthy waits for healthy, unwarned
    assert db is not None and (db.test, db.interval) == (["CMD-SHELL", "true"], "5s")


def _health(m: Mapped) -> None:
    for spec in (m.svc("web"), m.held("web")):
        assert spec.healthcheck == Healthcheck(
            test=["CMD", "wget", "-q", "-O-", "http://localhost/"], interval="30s",
            timeout="5s", retries=3, start_period="10s")


def _restart(m: Mapped) -> None:
    assert {n: (s.restart, s.restart_max_retries) for n, s in m.app.services.items()} == {
        "always": ("always", None), "flaky": ("on-failure", 3), "once": ("no", None),
        "unless": ("unless-stopped", None)}


def _deploy(m: Mapped) -> None:
    d = m.svc("web").deploy
    assert (d.mode, d.replicas, d.labels) == ("replicated", 4, {"tier": "front"})
    assert d.resources is not None and d.resources.limits is not None
    assert (d.resources.limits.cpus, d.resources.limits.memory, d.resources.limits.pids) \
        == (0.5, 128 << 20, 100)
    assert d.resources.reservations is not None
    assert (d.resources.reservations.cpus, d.resources.reservations.memory) == \
        (0.25, 64 << 20)
    assert m.held("web").deploy == d and m.held("web").replicas == 4


def _placement(m: Mapped) -> None:
    agent, db = m.svc("agent").deploy, m.svc("db").deploy
    assert agent.mode == "global"
    assert [(c.attribute, c.operator, c.value) for c in agent.placement.constraints] == \
        [("node.labels.role", "==", "edge")]
    assert (db.mode, db.replicas) == ("replicated", 3)
    assert [str(c) for c in db.placement.constraints] == ["node.labels.disk==ssd"]
    assert [p.spread for p in db.placement.preferences] == ["node.labels.zone"]
    assert db.placement.max_replicas_per_node == 1


def _rolling(m: Mapped) -> None:
    web = m.svc("web")
    assert (web.deploy.replicas, web.restart, web.restart_max_retries) == (2, "on-failure", 3)
    assert web.deploy.update_config == UpdateConfig(parallelism=1, delay=10.0,
                                                    order="start-first",
                                                    failure_action="rollback")
    assert web.deploy.rollback_config == UpdateConfig(parallelism=2)


def _misc(m: Mapped) -> None:
    api = m.svc("api")
    assert api.labels == {"com.example.team": "payments", "com.example.tier": "api"}
    assert (api.user, api.hostname, api.expose) == ("1000:1000", "api-host", ["3000", "9229"])
    assert api.ports == [] and m.held("api").labels == api.labels


def _ignored(m: Mapped) -> None:
    db = m.svc("db")
    assert (db.image, db.hostname, db.volumes) == ("busybox", None, [])
    if ULIMITS:
        nofile = db.ulimits["nofile"]  # type: ignore[attr-defined]
        assert (nofile.soft, nofile.hard) == (20000, 40000)


def _tmpfs(m: Mapped) -> None:
    assert m.svc("one").volumes == [Mount(type="tmpfs", target="/run")]
    assert [(v.type, v.target, v.tmpfs.size if v.tmpfs else None)
            for v in m.held("many").volumes] == [("tmpfs", "/run", None),
                                                 ("tmpfs", "/tmp", 64 << 20)]


def _security(m: Mapped) -> None:
    proxy, tools = m.svc("proxy"), m.svc("tools")
    assert (proxy.init, proxy.read_only, proxy.privileged, proxy.cap_drop, proxy.cap_add) \
        == (True, True, False, ["ALL"], ["NET_BIND_SERVICE"])
    assert (tools.privileged, tools.init, tools.read_only) == (True, False, False)


def _anchors(m: Mapped) -> None:
    api, worker = m.svc("api"), m.svc("worker")
    assert (api.image, api.restart, api.command) == ("busybox", "always", ["api"])
    assert (worker.image, worker.restart, worker.command) == ("busybox", "always", ["worker"])
    assert api.environment == {"LOG_LEVEL": "info"}
    assert worker.environment == {"LOG_LEVEL": "info", "QUEUE": "jobs"}
    assert sorted(m.app.services) == ["api", "worker"]  # x-base is no service


def _three(m: Mapped) -> None:
    assert m.svc("app").deploy.replicas == 2
    assert (m.svc("proxy").depends_on, m.svc("app").depends_on) == (
        {"app": "service_started"}, {"db": "service_started"})
    assert [(p.published, p.target) for p in m.svc("proxy").ports] == [(80, 80)]
    assert {n: sorted(m.held(n).networks) for n in m.app.services} == {
        "proxy": ["threetier_front"], "app": ["threetier_back", "threetier_front"],
        "db": ["threetier_back"]}
    assert m.held("db").networks["threetier_back"].aliases == ["database"]
    assert sorted(m.networks) == ["threetier_back", "threetier_front"]
    assert list(m.volumes) == ["threetier_pgdata"]
    assert mounts(m.held("db")) == [
        ("volume", "threetier_pgdata", "/var/lib/postgresql/data", False)]


def _merged(m: Mapped) -> None:
    web = m.svc("web")
    assert m.app.name == "merged"
    assert (web.image, web.command) == ("myweb:dev", ["serve"])
    assert [(p.published, p.target) for p in web.ports] == [(8443, 443), (9080, 80)]
    assert web.environment == {"MODE": "dev", "LOG": "info"}
    # Mounts merged by target: /src now a bind of the override, ./app moved to /app-src.
    assert mounts(m.held("web")) == [
        ("volume", "merged_data", "/data", False),
        ("bind", str(CORPUS / "app"), "/app-src", False), ("bind", "/srv/dev", "/src", False)]
    assert web.cap_add == ["NET_ADMIN", "SYS_PTRACE"]


def _named(m: Mapped) -> None:
    assert (m.app.networks["shared"].name, m.app.volumes["cache"].name) == \
        ("company-net", "company-cache")
    assert (list(m.networks), list(m.volumes)) == (["company-net"], ["company-cache"])
    assert list(m.held("app").networks) == ["company-net"]
    assert mounts(m.held("app")) == [("volume", "company-cache", "/cache", False)]


MERGE = ("30-merge-base.yml", "30-merge-override.yml")

CASES: dict[str, Case] = {
    "01-seed-todo.yml": Case(
        _seed, ("MYSQL_DB: todos", "MYSQL_DB: [todos]"),
        ("services.app.environment.MYSQL_DB", "expected a string")),
    "02-version-and-name.yml": Case(
        _version_name, ("name: shop", "name: Shop"), ("name", '"Shop" must be lowercase'),
        warns=frozenset({"version"})),
    "03-command-forms.yml": Case(
        _cmds, ('command: ["sleep", "3600"]', "command: {a: 1}"),
        ("services.list.command", "got a mapping")),
    "04-build-long.yml": Case(
        _build_long, ("dockerfile: prod.Dockerfile", "dockerfile: ../prod.Dockerfile"),
        ("services.api.build.dockerfile", "leaves the build context")),
    "05-build-short.yml": Case(
        _build_short, ("build: ./app", "buld: ./app"),
        ("services.worker.buld", 'unknown key "buld"')),
    "06-ports.yml": Case(
        _ports, ('"127.0.0.1:8053:53"', '"127.0.0.1:80530:53"'),
        ("services.dns.ports[1]", "published port 80530 is outside 1-65535")),
    "07-env-map-list-file.yml": Case(
        _env, ("env/db.env", "env/missing.env"),
        ("services.db.env_file[1]", "missing.env not found")),
    "08-volumes-short.yml": Case(
        _volumes_short, ("config:/etc/app:ro", "config:etc/app:ro"),
        ("services.app.volumes[1]", 'target "etc/app" must be an absolute path')),
    "09-volumes-long.yml": Case(
        _volumes_long, ("type: tmpfs", "type: nfs"),
        ("services.app.volumes[2].type", '"nfs" is not one of')),
    "10-top-level-volumes.yml": Case(
        _top_volumes, ("external: true", "external: maybe"),
        ("volumes.shared.external", 'expected true or false, got "maybe"')),
    "11-networks-aliases.yml": Case(
        _nets, ("aliases: [api.internal]", "aliases: api.internal"),
        ("services.api.networks.front.aliases", "expected a list"),
        warns=frozenset({"services.api.networks.back.ipv4_address"})),
    "12-external-network.yml": Case(
        _external_net, ("networks: [todo-app]", "networks: [todo-ap]"),
        ("services.client.networks[0]", 'refers to undefined network "todo-ap"')),
    "13-depends-on-list.yml": Case(
        _deps, ("- cache\n", "- cach\n"),
        ("services.web.depends_on.cach", 'depends on undefined service "cach"')),
    "14-depends-on-conditions.yml": Case(
        _conds, ("condition: service_started", "condition: service_running"),
        ("services.web.depends_on.cache.condition", '"service_running" is not one of')),
    "15-healthcheck.yml": Case(
        _health,
        ("  web:\n    image: busybox\n", "  web:\n    image: busybox\n    depends_on: [web]\n"),
        ("services.web.depends_on.web", 'service "web" depends on itself')),
    "16-restart.yml": Case(
        _restart, ("restart: on-failure:3", "restart: sometimes"),
        ("services.flaky.restart", '"sometimes" must be no, always')),
    "17-deploy-replicated.yml": Case(
        _deploy, ("memory: 128M", "memory: lots"),
        ("services.web.deploy.resources.limits.memory", '"lots" is not a size')),
    "18-deploy-global-placement.yml": Case(
        _placement, ("node.labels.role == edge", "node.labels.role ~ edge"),
        ("services.agent.deploy.placement.constraints[0]", 'unknown operator "~"')),
    "19-deploy-update-config.yml": Case(
        _rolling, ("replicas: 2", "replicas: -2"),
        ("services.web.deploy.replicas", "must be between 0 and 1000, got -2")),
    "20-expose-labels-user-hostname.yml": Case(
        _misc, ("hostname: api-host", "hostname: api_host!"),
        ("services.api.hostname", '"api_host!" is not a valid hostname')),
    "21-stop.yml": Case(
        want(lambda m: (m.svc("worker").stop_signal, m.held("worker").stop_grace_period),
             ("SIGINT", "1m30s")),
        ("stop_grace_period: 1m30s", "stop_grace_period: soon"),
        ("services.worker.stop_grace_period", '"soon" is not a duration')),
    "22-tmpfs.yml": Case(
        _tmpfs, ("/tmp:size=64m", "/tmp:size=64m,exotic"),
        ("services.many.tmpfs[1]", 'tmpfs option "exotic"')),
    "23-ulimits-and-friends.yml": Case(
        _ignored, ("    logging:", "    loging:"), ("services.db.loging", 'unknown key "loging"'),
        warns=frozenset({"services.db.container_name", "services.db.logging",
                         "services.db.sysctls", *(() if ULIMITS else ("services.db.ulimits",))})),
    "24-security.yml": Case(
        _security, ("cap_add: [NET_BIND_SERVICE]", "cap_add: [NET_BIND_SERVIC]"),
        ("services.proxy.cap_add[0]", '"NET_BIND_SERVIC" is not a Linux capability')),
    "25-extensions.yml": Case(
        want(lambda m: (m.app.name, list(m.app.services), m.svc("api").image),
             ("ext", ["api"], "busybox")),
        ('x-notes: "not for skiff"', 'notes: "not for skiff"'),
        ("services.api.notes", 'unknown key "notes"')),
    "26-anchors-merge.yml": Case(
        _anchors, ("restart: always", "restart: [always]"),
        ("services.api.restart", "expected a string, got a list")),
    "27-profiles.yml": Case(  # the docs profile active, debug not
        want(lambda m: list(m.app.services), ["web", "docs"]),
        ("profiles: [debug]", "profiles: debug"),
        ("services.debug.profiles", 'expected a list, got "debug"'),
        env={"COMPOSE_PROFILES": "docs"}),
    "28-interpolation.yml": Case(
        want(lambda m: (m.svc("web").image, m.svc("web").environment),
             ("busybox:1.36", {"GREETING": "hello ann", "PRICE": "$5"})),
        ("${USER_NAME:?set USER_NAME}", "${NAME:?set NAME}"),
        ("services.web.environment.GREETING", "required variable NAME is missing a value: "
                                              "set NAME")),
    "29-multi-service-app.yml": Case(
        _three, ("depends_on: [db]", "depends_on: [proxy]"),
        ("services.app.depends_on", "depends_on makes a cycle: app -> proxy -> app")),
    "30-merge-base.yml": Case(
        _merged, ('ports: ["8080:80", "8443:443"]', 'ports: {"8080": 80}'),
        ("services.web.ports", "expected a list, got a mapping"), files=MERGE),
    "30-merge-override.yml": Case(
        _merged, ("environment:", "enviroment:"),
        ("services.web.enviroment", 'unknown key "enviroment"'), files=MERGE),
    "31-named-everything.yml": Case(
        _named, ("name: company-net", "name: [company-net]"),
        ("networks.shared.name", "expected a string, got a list")),
}


def _files(name: str, folder: Path = CORPUS) -> list[str | Path]:
    return [folder / f for f in CASES[name].files or (name,)]


def _warned(result: LoadResult, sources: list[str | Path]) -> set[str]:
    paths = set()
    for warning in result.warnings:
        found = WARNING.match(warning)
        assert found, f"a warning without file, line and key path: {warning}"
        assert found["source"] in {str(s) for s in sources}, warning
        paths.add(found["path"])
    return paths


def test_the_corpus_is_complete() -> None:
    files = sorted(CORPUS.glob("*.yml"))
    assert len(files) >= 30
    assert {p.name for p in files} == set(CASES)
    for path in files:  # each says what it covers
        assert path.read_text().startswith("# "), path.name


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_file_maps_to_the_right_objects(name: str) -> None:
    case = CASES[name]
    result = load_files(_files(name), environ=case.env)
    m = mapped(result)
    assert case.check(m) is None  # a check asserts: one that returns a bool checks nothing
    assert _warned(result, _files(name)) == case.warns
    app_networks = {n.name for n in m.app.networks.values()}
    app_volumes = {v.name for v in m.app.volumes.values()}
    for svc, service in m.services.items():  # what the Services hold: cluster names
        assert (service.metadata.name, service.metadata.app, service.metadata.owner_uid) == \
            (svc, m.app.name, UID)
        for mount in service.spec.volumes:
            if mount.type == "volume" and mount.source:
                assert mount.source in app_volumes, f"{svc}: {mount.source} is no cluster name"
        assert service.spec.networks and set(service.spec.networks) <= app_networks
    made = [*m.networks.values(), *m.volumes.values()]
    assert all((o.metadata.app, o.metadata.owner_uid, o.metadata.labels.get("skiff.app")) ==
               (m.app.name, UID, m.app.name) for o in made)


def _malformed(name: str, tmp_path: Path) -> tuple[ManifestError, Path, int]:
    """The file with its malformed change, in a copy of the corpus: the error, the file's
    path, and the first line the change made different."""
    folder = tmp_path / CORPUS.name
    shutil.copytree(CORPUS, folder)
    case, path = CASES[name], folder / name
    text = path.read_text()
    old, new = case.bad
    assert text.count(old) == 1, f"{name}: {old!r} is not in the file once"
    changed = text.replace(old, new)
    path.write_text(changed)
    line = next(i for i, (a, b) in enumerate(zip(text.splitlines(), changed.splitlines(),
                                                 strict=False), 1) if a != b)
    with pytest.raises(ManifestError) as info:
        load_files(_files(name, folder), environ=case.env)
    return info.value, path, line


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_malformed_variant_is_refused_naming_the_file_and_key(name: str,
                                                                 tmp_path: Path) -> None:
    error, path, _ = _malformed(name, tmp_path)
    key, message = CASES[name].refused
    found = [str(p) for p in error.problems]
    named = [p for p in error.problems if p.path == key]
    assert named, found
    assert all(p.source == str(path) and p.line and p.column for p in named), found
    assert any(message in p.message for p in named), found
    assert str(path) in str(error) and key in str(error)  # what the user reads


LINE_OFF = {
    # The problem is placed at depends_on's first entry (line 7, "- db"), not at the
    # entry that names the undefined service (line 8, "- cach").
    "13-depends-on-list.yml": "the short depends_on form locates an entry's problem at "
                              "the list's first entry",
}


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(reason=LINE_OFF[n], strict=True))
    if n in LINE_OFF else n for n in sorted(CASES)])
def test_the_problem_is_on_the_line_that_was_changed(name: str, tmp_path: Path) -> None:
    error, _, line = _malformed(name, tmp_path)
    key, _ = CASES[name].refused
    assert next(p.line for p in error.problems if p.path == key) == line


OTHER = "name: other\nservices:\n  zz:\n    image: alpine\n    command: [a]\n"


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_check_passes_on_another_app(name: str) -> None:
    """A check that an unrelated app passes could not fail on a wrong mapping either."""
    other = mapped(load_text(OTHER, "other.yml", None, environ={}))
    with pytest.raises((AssertionError, KeyError)):
        CASES[name].check(other)
