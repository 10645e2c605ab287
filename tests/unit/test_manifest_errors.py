"""Bad manifests: each problem names the file, line, column and key path, in plain words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from skiff.manifest import (
    MAX_MANIFEST_BYTES,
    ManifestError,
    Problem,
    load_document,
    load_file,
    load_text,
)


def problems(text: str, env: dict[str, str] | None = None,
             base_dir: Path | None = Path("/srv/proj")) -> list[Problem]:
    with pytest.raises(ManifestError) as info:
        load_text(text, "app.yml", base_dir, environ=env or {})
    return info.value.problems


def where(p: Problem) -> str:
    return f"{p.line}:{p.column} {p.path}"


HEAD = "name: app\nservices:\n  web:\n    image: busybox\n"  # the service's keys start at line 5


# (the lines after HEAD, "line:column path" of the first problem, a fragment of its message)
BAD_SERVICES = [
    ("    colour: red\n", "5:5 services.web.colour", 'unknown key "colour"'),
    ("    ports:\n      - '80'\n      - '80:80:80'\n", "7:9 services.web.ports[1]",
     '"80:80:80" is not a port mapping'),
    ("    ports: ['70000']\n", "5:13 services.web.ports[0]", "70000 is outside 1-65535"),
    ("    ports: ['0:80']\n", "5:13 services.web.ports[0]", "0 is outside 1-65535"),
    ("    ports: ['8000-8010:80']\n", "5:13 services.web.ports[0]",
     "ranges differ in length"),
    ("    ports: ['80-70']\n", "5:13 services.web.ports[0]", "runs backwards"),
    ("    ports: ['80/sctp']\n", "5:13 services.web.ports[0]", 'protocol "sctp"'),
    ("    ports: ['abc']\n", "5:13 services.web.ports[0]", '"abc" is not a port'),
    ("    ports: ['8080:80', '8080:81']\n", "5:24 services.web.ports[1]",
     "8080/tcp is published twice"),
    ("    ports: ['1-1001']\n", "5:13 services.web.ports[0]", "over 1000 ports"),
    ("    ports: [{published: 80}]\n", "5:13 services.web.ports[0]",
     'missing required key "target"'),
    ("    ports: [{target: 80, proto: tcp}]\n", "5:26 services.web.ports[0].proto",
     'unknown key "proto"'),
    ("    ports: [{target: abc}]\n", "5:13 services.web.ports[0]",
     'target: expected an integer, got "abc"'),
    ("    ports: [{target: 80, protocol: sctp}]\n", "5:36 services.web.ports[0].protocol",
     '"sctp" is not one of "tcp", "udp"'),
    ("    ports: [{target: 80, host_ip: nope}]\n", "5:13 services.web.ports[0]",
     '"nope" is not an IP address'),
    ("    volumes: [data:/d]\n", "5:15 services.web.volumes[0]",
     'service "web" refers to undefined volume "data"'),
    ("    volumes: [/a, /b, /a/]\n", "5:23 services.web.volumes[2]",
     "target /a is already mounted by volumes[0]"),
    ("    volumes: ['./x:rel']\n", "5:15 services.web.volumes[0]",
     '"rel" must be an absolute path'),
    ("    volumes: ['/x:/y:rx']\n", "5:15 services.web.volumes[0]", 'unknown mode "rx"'),
    ("    volumes: ['a:b:c:d']\n", "5:15 services.web.volumes[0]", "is not SOURCE:TARGET"),
    ("    volumes: ['b@d:/d']\n", "5:15 services.web.volumes[0]", 'volume name "b@d"'),
    ("    volumes: [{type: nfs, target: /x}]\n", "5:22 services.web.volumes[0].type",
     '"nfs" is not one of "volume", "bind", "tmpfs"'),
    ("    volumes: [{type: bind, target: /x}]\n", "5:15 services.web.volumes[0]",
     "a bind mount needs a source"),
    ("    volumes: [{type: tmpfs, target: /t, tmpfs: {size: lots}}]\n",
     "5:15 services.web.volumes[0]", 'tmpfs.size: "lots" is not a size'),
    ("    volumes: [{type: tmpfs, target: /t, tmpfs: {mode: '999'}}]\n",
     "5:15 services.web.volumes[0]", "is not an octal mode"),
    ("    networks: [front]\n", "5:16 services.web.networks[0]",
     'service "web" refers to undefined network "front"'),
    ("    networks: {default: {aliases: ['no spaces']}}\n",
     "5:36 services.web.networks.default.aliases[0]", "is not a valid DNS name"),
    ("    networks: {default: {ipv4_address: 10.0.0.300}}\n",
     "5:40 services.web.networks.default.ipv4_address", "is not an IPv4 address"),
    ("    deploy: {replicas: -1}\n", "5:24 services.web.deploy.replicas",
     "must be between 0 and 1000, got -1"),
    ("    deploy: {replicas: 1001}\n", "5:24 services.web.deploy.replicas",
     "must be between 0 and 1000, got 1001"),
    ("    deploy: {replicas: three}\n", "5:24 services.web.deploy.replicas",
     'expected an integer, got "three"'),
    ("    deploy: {replicas: 1.5}\n", "5:24 services.web.deploy.replicas",
     "expected an integer or a string, got 1.5"),
    ("    deploy: {replicas: [1]}\n", "5:24 services.web.deploy.replicas",
     "expected an integer or a string, got a list"),
    ("    deploy: {mode: job}\n", "5:20 services.web.deploy.mode",
     '"job" is not one of "replicated", "global"'),
    ("    deploy: {mode: global, replicas: 2}\n", "5:38 services.web.deploy.replicas",
     "replicas can only be used with mode: replicated"),
    ("    deploy: {mode: global, placement: {max_replicas_per_node: 2}}\n",
     "5:63 services.web.deploy.placement.max_replicas_per_node",
     "max_replicas_per_node can only be used with mode: replicated"),
    ("    deploy: {placement: {max_replicas_per_node: 0}}\n",
     "5:49 services.web.deploy.placement.max_replicas_per_node",
     "must be between 1 and 1000, got 0"),
    ("    deploy: {placement: {constraints: node.name==a}}\n",
     "5:39 services.web.deploy.placement.constraints", 'expected a list, got "node.name==a"'),
    ("    deploy:\n      placement:\n        constraints: [node.name==a, node.role==manager]\n",
     "7:37 services.web.deploy.placement.constraints[1]",
     'constraint "node.role==manager": unknown attribute "node.role" '
     "(allowed: node.name, node.hostname or node.labels.KEY)"),
    ("    deploy: {placement: {constraints: ['node.labels.disk>=3']}}\n",
     "5:40 services.web.deploy.placement.constraints[0]",
     'constraint "node.labels.disk>=3": unknown operator ">=" (allowed: == or !=)'),
    ("    deploy: {placement: {constraints: ['node.labels.disk=ssd']}}\n",
     "5:40 services.web.deploy.placement.constraints[0]", 'unknown operator "="'),
    ("    deploy: {placement: {constraints: ['node.labels.==ssd']}}\n",
     "5:40 services.web.deploy.placement.constraints[0]", 'unknown attribute "node.labels."'),
    ("    deploy: {placement: {constraints: [ssd]}}\n",
     "5:40 services.web.deploy.placement.constraints[0]",
     'constraint "ssd" must be ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE'),
    ("    deploy: {placement: {constraints: ['node.name==']}}\n",
     "5:40 services.web.deploy.placement.constraints[0]", "needs a value after =="),
    ("    deploy: {placement: {preferences: [{spread: zone}]}}\n",
     "5:49 services.web.deploy.placement.preferences[0].spread",
     'spread "zone" must be node.labels.KEY'),
    ("    deploy: {placement: {preferences: [spread]}}\n",
     "5:40 services.web.deploy.placement.preferences[0]", "expected a mapping"),
    ("    deploy: {placement: {preferences: [{spread: node.labels.z}, "
     "{spread: node.labels.z}]}}\n",
     "5:65 services.web.deploy.placement.preferences[1]", "listed twice"),
    ("    deploy: {placement: {affinity: x}}\n", "5:26 services.web.deploy.placement.affinity",
     'unknown key "affinity"'),
    ("    deploy: {resources: {limits: {memory: lots}}}\n",
     "5:43 services.web.deploy.resources.limits.memory", '"lots" is not a size'),
    ("    deploy: {resources: {limits: {cpus: -1}}}\n",
     "5:41 services.web.deploy.resources.limits.cpus", "must be above 0"),
    ("    deploy: {resources: {limits: {pids: 0}}}\n",
     "5:41 services.web.deploy.resources.limits.pids", "must be between 1"),
    ("    environment: 5\n", "5:18 services.web.environment",
     "expected a mapping or a list, got 5"),
    ("    environment: {A: [1]}\n", "5:22 services.web.environment.A",
     "expected a string or a number or true or false or null, got a list"),
    ("    environment: [A=1, A=1]\n", "5:18 services.web.environment", "duplicate entries"),
    ("    environment: ['=x']\n", "5:18 services.web.environment", "needs a name"),
    ("    command: 'echo \"unclosed'\n", "5:14 services.web.command",
     "not a valid command line"),
    ("    command: [echo, 1]\n", "5:21 services.web.command[1]", "expected a string, got 1"),
    ("    restart: sometimes\n", "5:14 services.web.restart",
     '"sometimes" must be no, always, unless-stopped or on-failure'),
    ("    restart: always:3\n", "5:14 services.web.restart", "must be no, always"),
    ("    stop_signal: SIGNOPE\n", "5:18 services.web.stop_signal", "is not a signal name"),
    ("    stop_grace_period: 10 seconds\n", "5:24 services.web.stop_grace_period",
     "is not a duration"),
    ("    stop_grace_period: -1\n", "5:24 services.web.stop_grace_period",
     "must be between 0 and one year"),
    ("    cap_add: [FLY]\n", "5:15 services.web.cap_add[0]", '"FLY" is not a Linux capability'),
    ("    privileged: maybe\n", "5:17 services.web.privileged",
     'expected true or false, got "maybe"'),
    ("    working_dir: app\n", "5:18 services.web.working_dir", "must be an absolute path"),
    ("    hostname: -bad-\n", "5:15 services.web.hostname", "is not a valid hostname"),
    ("    image: ' '\n", "5:12 services.web.image", "image must not be empty"),
]


@pytest.mark.parametrize("lines, location, fragment", BAD_SERVICES)
def test_bad_service_keys(lines: str, location: str, fragment: str) -> None:
    if lines.startswith("    image:"):
        text = "name: app\nservices:\n  web:\n    x-pad: 1\n" + lines
    else:
        text = HEAD + lines
    found = problems(text)
    assert where(found[0]) == location, found
    assert fragment in found[0].message, found


# Whole documents: (text, "line:column path" of the first problem, message fragment)
BAD_DOCUMENTS = [
    ("", "None:None ", "the manifest is empty"),
    ("- web\n", "1:1 ", "the top level must be a mapping"),
    ("just text\n", "1:1 ", "not a single value"),
    ("name: app\n", "1:1 ", 'missing required key "services"'),
    ("name: app\nservices: {}\n", "2:11 services", "needs at least one entry"),
    ("name: app\nservices:\n", "2:10 services", "expected a mapping, got null"),
    ("name: app\nservices: {web: {command: x}}\n", "2:17 services.web",
     "a service needs `image`, or `build` to make one"),
    ("name: app\nservices: {web: {image: 5}}\n", "2:25 services.web.image",
     "expected a string, got 5"),
    ("name: app\nservices: {web: {image: x}}\nsecrts: {}\n", "3:1 secrts",
     'unknown key "secrts"'),
    ("name: My App\nservices: {web: {image: x}}\n", "1:7 name", '"My App" must be lowercase'),
    ("name: app\nservices: {'bad name': {image: x}}\n", "2:12 services.bad name",
     'service name "bad name"'),
    ("name: app\nservices: {web: {image: x}}\nnetworks: {front: {driver: 1}}\n",
     "3:28 networks.front.driver", "expected a string, got 1"),
    ("name: app\nservices: {web: {image: x}}\nnetworks: {front: {ipam: {config: "
     "[{subnet: nope}]}}}\n", "3:45 networks.front.ipam.config[0].subnet",
     '"nope" is not a CIDR subnet'),
    ("name: app\nservices: {web: {image: x}}\nvolumes: {data: {driver_opts: {a: [1]}}}\n",
     "3:35 volumes.data.driver_opts.a", "expected a string or a number, got a list"),
    ("name: app\nservices: {web: {image: x}}\nvolumes: {data: {external: sure}}\n",
     "3:28 volumes.data.external", 'expected true or false, got "sure"'),
    ("name: app\nservices:\n  web: {image: x}\n  web: {image: y}\n", "4:3 services.web",
     'duplicate key "web" (first at line 3)'),
    ("name: app\nservices: {web: {image: x}\n", "3:1 ", "invalid YAML"),
    ("name: app\n\tservices:\n", "2:1 ", "invalid YAML"),
    ("name: app\nservices: {web: {image: *nope}}\n", "2:25 ", "found undefined alias"),
    ("name: app\nservices: {web: {image: !!binary aGk=}}\n", "2:25 services.web.image",
     "YAML tag !!binary is not supported"),
    ("name: app\nservices: {web: {image: !custom x}}\n", "2:25 services.web.image",
     "bad value"),
    ("name: a\x07pp\nservices: {}\n", "1:8 ", "character U+0007 is not allowed"),
    ("a: 1\n---\nb: 2\n", "2:1 ", "expected a single document"),
    ("name: app\nservices: &s {web: {image: x, more: *s}}\n", "2:11 services.web.more",
     "recursive alias"),
]


@pytest.mark.parametrize("text, location, fragment", BAD_DOCUMENTS)
def test_bad_documents(text: str, location: str, fragment: str) -> None:
    found = problems(text)
    assert where(found[0]) == location, found
    assert fragment in found[0].message, found


def test_several_problems_are_reported_together_in_file_order() -> None:
    text = HEAD + ("    ports: ['80:80:80']\n"
                   "    deploy: {replicas: -3}\n"
                   "    volumes: [nope:/x]\n")
    found = problems(text)
    assert [where(p) for p in found] == ["5:13 services.web.ports[0]",
                                         "6:24 services.web.deploy.replicas",
                                         "7:15 services.web.volumes[0]"]


def test_message_format_is_file_line_column_path_message() -> None:
    with pytest.raises(ManifestError) as info:
        load_text(HEAD + "    ports:\n      - '80'\n      - '80:80:80'\n", "app.yml",
                  Path("/p"), environ={})
    assert str(info.value).startswith(
        'app.yml:7:9 services.web.ports[1]: "80:80:80" is not a port mapping')
    assert str(Problem("<api>", None, None, "", "boom")) == "<api>: boom"


def test_unknown_keys_are_each_reported_at_their_own_line() -> None:
    found = problems(HEAD + "    colour: red\n    size: 3\n")
    assert [(where(p), p.message) for p in found] == [
        ("5:5 services.web.colour", 'unknown key "colour"'),
        ("6:5 services.web.size", 'unknown key "size"')]


def test_interpolated_value_that_is_not_a_number_is_a_clear_error() -> None:
    found = problems(HEAD + "    deploy: {replicas: '${N}'}\n", env={"N": "many"})
    assert (where(found[0]), found[0].message) == (
        "5:24 services.web.deploy.replicas", 'expected an integer, got "many"')


def test_relative_bind_without_a_base_folder() -> None:
    found = problems(HEAD + "    volumes: ['./data:/d']\n", base_dir=None)
    assert "must be an absolute path here" in found[0].message
    with pytest.raises(ManifestError, match="must be an absolute path here"):
        load_document({"name": "a", "services": {"w": {"image": "x", "volumes": [
            {"type": "bind", "source": "~/data", "target": "/d"}]}}})


def test_no_name_and_no_folder_to_take_it_from() -> None:
    found = problems("services: {web: {image: x}}\n", base_dir=None)
    assert "the app needs a name" in found[0].message
    found = problems("services: {web: {image: x}}\n", base_dir=Path("/srv/___"))
    assert 'folder name "___"' in found[0].message


def test_project_name_argument_is_checked() -> None:
    with pytest.raises(ManifestError, match='project name "Bad!"'):
        load_text("services: {web: {image: x}}\n", "app.yml", None, {}, project_name="Bad!")


@pytest.mark.parametrize("doc, fragment", [
    ("just a string", "the top level must be a mapping"),
    ({1: "x"}, "key 1 is not a string"),
    ({"name": "a", "services": {"w": {"image": b"x"}}}, "unsupported value of type bytes"),
    ({"name": "a", "services": {"w": {"image": "x", "deploy": {"replicas": 10**6}}}},
     "services.w.deploy.replicas: must be between 0 and 1000"),
    ({"name": "a", "services": {"w": {"image": "x", "ports": ["80:80:80"]}}},
     "services.w.ports[0]"),
])
def test_load_document_errors_have_paths_but_no_positions(doc: Any, fragment: str) -> None:
    with pytest.raises(ManifestError) as info:
        load_document(doc, source="<api>")
    assert fragment in str(info.value)
    assert all(p.line is None for p in info.value.problems)
    assert str(info.value).startswith("<api>")


def test_size_limit_of_text(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="larger than the limit"):
        load_text("#" * (MAX_MANIFEST_BYTES + 1), "app.yml", None, {})
    # Counted in bytes, not characters.
    with pytest.raises(ManifestError, match="larger than the limit"):
        load_text("é" * (MAX_MANIFEST_BYTES // 2 + 1), "app.yml", None, {})


def test_unreadable_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read"):
        load_file(tmp_path / "missing.yml", environ={})
    bad = tmp_path / "app.yml"
    bad.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ManifestError, match="not UTF-8 text"):
        load_file(bad, environ={})
