"""Properties of the loader, checked on generated input.

- Normalisation is idempotent: loading ``to_compose(app)`` gives ``app`` again, both as
  data (what the server receives) and as YAML (what `skiff config` prints).
- Whatever arrives (random text, bytes, YAML of random data, random JSON, random values
  under real keys), only ManifestError escapes, and never as an "internal error".
"""

from __future__ import annotations

import json
import os
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from skiff.manifest import ManifestError, load_document, load_text, to_compose
from skiff.manifest.compose_out import escape_interpolation
from skiff.manifest.services_extra import CAPABILITIES
from skiff.manifest.units import format_duration

# A few seconds in the unit tier; SKIFF_FUZZ_EXAMPLES=5000 for a long hunt.
SETTINGS = settings(max_examples=int(os.environ.get("SKIFF_FUZZ_EXAMPLES", "40")),
                    deadline=None, suppress_health_check=[HealthCheck.too_slow])
ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


def ident(first: str, rest: str, max_size: int) -> st.SearchStrategy[str]:
    """Like from_regex("[first][rest]{0,max}"), but much faster to generate."""
    return st.builds(lambda a, b: a + b, st.sampled_from(first),
                     st.text(alphabet=rest, max_size=max_size))


# --- valid documents -------------------------------------------------------------------

names = ident(ALNUM, ALNUM + "_-", 10)
words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
env_keys = ident("ABCXYZabc_", ALNUM + "ABC_.", 8)
scalars = st.one_of(words, st.integers(-10**6, 10**6), st.booleans(),
                    st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: round(f, 3)))
paths = st.lists(ident(ALNUM + "_", ALNUM + "_.-", 5), min_size=1, max_size=3).map(
    lambda p: "/" + "/".join(p))
ports = st.integers(1, 65535)


@st.composite
def port_entries(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["short", "pair", "host", "range", "long", "int"]))
    target, published = draw(ports), draw(ports)
    proto = draw(st.sampled_from(["", "/tcp", "/udp"]))
    if kind == "short":
        return f"{target}{proto}"
    if kind == "int":
        return target
    if kind == "pair":
        return f"{published}:{target}{proto}"
    if kind == "host":
        ip = draw(st.sampled_from(["127.0.0.1", "[::1]", "10.0.0.5"]))
        return f"{ip}:{draw(st.sampled_from(['', str(published)]))}:{target}{proto}"
    if kind == "range":
        n = draw(st.integers(0, 3))
        first, second = draw(st.integers(1, 65000)), draw(st.integers(1, 65000))
        return f"{first}-{first + n}:{second}-{second + n}{proto}"
    long: dict[str, Any] = {"target": target}
    if draw(st.booleans()):
        long["published"] = draw(st.one_of(ports, ports.map(str)))
    if draw(st.booleans()):
        long["protocol"] = draw(st.sampled_from(["tcp", "udp"]))
    if draw(st.booleans()):
        long["mode"] = draw(st.sampled_from(["ingress", "host"]))
    if draw(st.booleans()):
        long["host_ip"] = draw(st.sampled_from(["0.0.0.0", "::", "192.168.1.9"]))
    return long


@st.composite
def mounts(draw: st.DrawFn, volumes: list[str]) -> Any:
    target = draw(paths)
    mode = draw(st.sampled_from(["", ":ro", ":rw"]))
    kind = draw(st.sampled_from(["anon", "bind", "named", "long-bind", "long-vol", "tmpfs"]))
    if kind == "anon" or (kind in ("named", "long-vol") and not volumes):
        return target
    if kind == "bind":
        return f"{draw(paths)}:{target}{mode}"
    if kind == "named":
        return f"{draw(st.sampled_from(volumes))}:{target}{mode}"
    if kind == "long-bind":
        return {"type": "bind", "source": draw(paths), "target": target,
                "read_only": draw(st.booleans()),
                "bind": {"create_host_path": draw(st.booleans())}}
    if kind == "long-vol":
        return {"type": "volume", "source": draw(st.sampled_from(volumes)), "target": target,
                "volume": {"nocopy": draw(st.booleans())}}
    tmpfs: dict[str, Any] = {}
    if draw(st.booleans()):
        tmpfs["size"] = draw(st.one_of(st.integers(0, 2**40), st.sampled_from(["64m", "1g"])))
    if draw(st.booleans()):
        tmpfs["mode"] = draw(st.one_of(st.integers(0, 0o7777), st.sampled_from(["1777", "755"])))
    return {"type": "tmpfs", "target": target, "tmpfs": tmpfs}


def optional(draw: st.DrawFn, out: dict[str, Any], key: str, strategy: Any) -> None:
    if draw(st.booleans()):
        out[key] = draw(strategy)


label_keys = ident("abcxyz", ALNUM + "._-/", 8)
constraints = st.builds(
    lambda attr, op, value, pad: f"{attr}{pad}{op}{pad}{value}",
    st.one_of(st.sampled_from(["node.name", "node.hostname"]),
              label_keys.map(lambda k: "node.labels." + k)),
    st.sampled_from(["==", "!="]), ident(ALNUM, ALNUM + ".-_=", 8), st.sampled_from(["", " "]))


@st.composite
def deploys(draw: st.DrawFn, resources: st.SearchStrategy[Any]) -> dict[str, Any]:
    deploy = draw(st.fixed_dictionaries({}, optional={
        "replicas": st.one_of(st.integers(0, 1000), st.integers(0, 1000).map(str)),
        "mode": st.sampled_from(["replicated", "global"]),
        "placement": st.fixed_dictionaries({}, optional={
            "constraints": st.lists(constraints, max_size=3),
            "preferences": st.lists(label_keys, max_size=2, unique=True).map(
                lambda keys: [{"spread": "node.labels." + k} for k in keys]),
            "max_replicas_per_node": st.one_of(st.integers(1, 1000), st.just("2"))}),
        "labels": st.dictionaries(env_keys, words, max_size=2),
        "resources": st.fixed_dictionaries({}, optional={
            "limits": resources,
            "reservations": resources.map(lambda r: {k: v for k, v in r.items()
                                                     if k != "pids"})})}))
    if deploy.get("mode") == "global":  # which refuses replicas and a per-node maximum
        deploy.pop("replicas", None)
        deploy.get("placement", {}).pop("max_replicas_per_node", None)
    return deploy


@st.composite
def services(draw: st.DrawFn, volumes: list[str], networks: list[str]) -> dict[str, Any]:
    svc: dict[str, Any] = {"image": draw(ident("abcxyz", ALNUM + "./:-", 15))}
    command = st.one_of(st.lists(words, max_size=4),
                        st.lists(ident(ALNUM, ALNUM + "=-", 4), max_size=4).map(" ".join))
    optional(draw, svc, "command", command)
    optional(draw, svc, "entrypoint", command)
    optional(draw, svc, "environment", st.one_of(
        st.dictionaries(env_keys, scalars, max_size=4),
        st.lists(st.tuples(env_keys, words).map("=".join), max_size=4, unique=True)))
    optional(draw, svc, "labels", st.dictionaries(env_keys, scalars, max_size=3))
    optional(draw, svc, "ports", st.lists(port_entries(), max_size=4))
    optional(draw, svc, "volumes", st.lists(mounts(volumes), max_size=4))
    if networks and draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from([*networks, "default"]), min_size=1,
                               unique=True))
        svc["networks"] = chosen if draw(st.booleans()) else {
            n: draw(st.one_of(st.none(), st.fixed_dictionaries({}, optional={
                "aliases": st.lists(ident("abc", "abc123", 6), max_size=2),
                "ipv4_address": st.sampled_from(["10.0.0.2", "172.20.1.1"])})))
            for n in chosen}
    resources = st.fixed_dictionaries({}, optional={
        "cpus": st.one_of(st.floats(0.01, 64).map(lambda f: round(f, 2)), st.just("0.5")),
        "memory": st.one_of(st.integers(0, 2**40), st.sampled_from(["512m", "1g", "100b"])),
        "pids": st.integers(1, 10_000)})
    optional(draw, svc, "deploy", deploys(resources))
    optional(draw, svc, "restart", st.sampled_from(["no", "always", "unless-stopped",
                                                    "on-failure", "on-failure:3"]))
    optional(draw, svc, "stop_signal", st.sampled_from(["SIGTERM", "int", "9", "SIGUSR1"]))
    optional(draw, svc, "stop_grace_period", st.one_of(
        st.integers(0, 10**6).map(lambda n: format_duration(n / 1000)),
        st.floats(0, 3600, allow_nan=False),
        st.sampled_from(["10s", "1m30s", "1.5s", "500ms", "2h1us"])))
    optional(draw, svc, "cap_add", st.lists(st.sampled_from(sorted(CAPABILITIES)),
                                            max_size=3))
    optional(draw, svc, "cap_drop", st.lists(st.sampled_from(["ALL", "chown", "CAP_KILL"]),
                                             max_size=2))
    for flag in ("privileged", "read_only", "init"):
        optional(draw, svc, flag, st.one_of(st.booleans(), st.sampled_from(["true", "no"])))
    optional(draw, svc, "working_dir", paths)
    optional(draw, svc, "user", st.one_of(st.integers(0, 65535), names))
    optional(draw, svc, "hostname", ident("abcxyz", ALNUM + "-", 8).map(lambda h: h + "0"))
    return svc


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    volumes = draw(st.lists(names, max_size=3, unique=True))
    networks = draw(st.lists(names, max_size=3, unique=True))
    doc: dict[str, Any] = {"name": draw(names)}
    doc["services"] = {n: draw(services(volumes, networks))
                       for n in draw(st.lists(names, min_size=1, max_size=3, unique=True))}
    top_opts = {"driver": st.sampled_from(["local", "bridge"]),
                "labels": st.dictionaries(env_keys, words, max_size=2),
                "driver_opts": st.dictionaries(env_keys, st.one_of(words, st.integers()),
                                               max_size=2),
                "external": st.booleans(), "name": names}
    if volumes or draw(st.booleans()):
        doc["volumes"] = {v: draw(st.one_of(st.none(), st.fixed_dictionaries(
            {}, optional=top_opts))) for v in volumes}
    if networks:
        net_opts = {**top_opts, "internal": st.booleans(), "attachable": st.booleans(),
                    "ipam": st.fixed_dictionaries({}, optional={
                        "driver": st.just("default"),
                        "config": st.lists(st.fixed_dictionaries({}, optional={
                            "subnet": st.just("10.9.0.0/16"),
                            "gateway": st.just("10.9.0.1")}), max_size=2)})}
        doc["networks"] = {n: draw(st.one_of(st.none(), st.fixed_dictionaries(
            {}, optional=net_opts))) for n in networks}
    return doc


def load_or_skip(doc: dict[str, Any]) -> Any:
    try:
        return load_document(doc).app
    except ManifestError as exc:
        # Generated documents may clash (a port published twice, one target mounted
        # twice, networking rules across services); those are skipped, anything else is
        # a bug in the generator or loader.
        clashes = ("twice", "already mounted", "published by both", "overlaps",
                   "only on internal networks", "is the name of service", "is claimed by")
        assert all(any(c in p.message for c in clashes) for p in exc.problems), str(exc)
        assume(False)


@SETTINGS
@given(documents())
def test_loading_to_compose_again_gives_the_same_app(doc: dict[str, Any]) -> None:
    app = load_or_skip(doc)
    again = load_document(to_compose(app))
    assert again.app == app and again.warnings == []
    assert to_compose(again.app) == to_compose(app)


@SETTINGS
@given(documents())
def test_printed_yaml_loads_back_to_the_same_app(doc: dict[str, Any]) -> None:
    app = load_or_skip(doc)
    printed = yaml.safe_dump(escape_interpolation(to_compose(app)), sort_keys=False)
    assert load_text(printed, "config.yml", None, environ={}).app == app
    # JSON (what the CLI sends to the server) keeps it too.
    assert load_document(json.loads(json.dumps(to_compose(app)))).app == app


# --- garbage in, ManifestError out ------------------------------------------------------

def only_manifest_errors(run: Any) -> None:
    try:
        run()
    except ManifestError as exc:
        assert exc.problems
        assert "internal error" not in str(exc), str(exc)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=30)
SERVICE_KEYS = ["image", "command", "entrypoint", "environment", "working_dir", "user",
                "hostname", "labels", "ports", "volumes", "networks", "deploy", "restart",
                "stop_signal", "stop_grace_period", "cap_add", "cap_drop", "privileged",
                "read_only", "init"]
near_valid = st.fixed_dictionaries({
    "name": st.one_of(names, json_values),
    "services": st.dictionaries(st.one_of(names, st.text(max_size=5)), st.dictionaries(
        st.sampled_from(SERVICE_KEYS), json_values, max_size=6), max_size=2),
    "networks": st.dictionaries(names, st.one_of(st.none(), st.dictionaries(st.sampled_from(
        ["driver", "ipam", "external", "labels", "name", "driver_opts"]), json_values))),
    "volumes": st.dictionaries(names, st.one_of(st.none(), st.dictionaries(st.sampled_from(
        ["driver", "external", "labels", "name", "driver_opts"]), json_values))),
})


@SETTINGS
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    only_manifest_errors(lambda: load_text(text, "fuzz.yml", None, environ={}))


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    only_manifest_errors(lambda: load_text(data, "fuzz.yml", None, environ={}))


@SETTINGS
@given(json_values)
def test_random_json_documents(doc: Any) -> None:
    only_manifest_errors(lambda: load_document(doc))


@SETTINGS
@given(near_valid, st.sampled_from(SERVICE_KEYS))
def test_random_values_under_real_keys(doc: dict[str, Any], key: str) -> None:
    only_manifest_errors(lambda: load_document(doc))
    # The same as YAML, with variables in play.
    text = yaml.safe_dump(doc)
    only_manifest_errors(lambda: load_text(text, "fuzz.yml", None, environ={"N": "3"}))


@SETTINGS
@given(documents(), st.data())
def test_valid_documents_with_one_value_replaced(doc: dict[str, Any], data: Any) -> None:
    # Walk to a random place in a valid document and put junk there.
    node: Any = doc
    while isinstance(node, dict | list) and node and data.draw(st.booleans()):
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = data.draw(st.sampled_from(keys))
        if not isinstance(node[key], dict | list) or data.draw(st.booleans()):
            node[key] = data.draw(json_values)
            break
        node = node[key]
    only_manifest_errors(lambda: load_document(doc))


@SETTINGS
@given(st.lists(st.sampled_from(["$", "{", "}", ":", "-", "?", "+", "A", "$$", "${A",
                                 "${B:-", "${A:?x}", "${U}", "x"]), max_size=12))
def test_random_interpolation_syntax(parts: list[str]) -> None:
    value = "".join(parts)
    text = f"name: app\nservices:\n  web:\n    image: {json.dumps(value)}\n"
    only_manifest_errors(lambda: load_text(text, "fuzz.yml", None, environ={"A": "a"}))
