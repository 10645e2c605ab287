"""Parsing OCI/Docker manifests and configs: every field checked, typed values out."""

from __future__ import annotations

import json

import pytest

from agent.images.errors import InvalidImage, UnsupportedImage
from agent.images.models import Descriptor
from agent.images.oci import (
    MT_DOCKER_MANIFEST,
    MT_OCI_LAYER_GZIP,
    canonical_json,
    digest_hex,
    make_config,
    make_manifest,
    parse_config,
    parse_manifest,
    sha256_digest,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def manifest(**over: object) -> bytes:
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D1,
                   "size": 10},
        "layers": [{"mediaType": MT_OCI_LAYER_GZIP, "digest": D2, "size": 20}],
    }
    doc.update(over)
    return json.dumps(doc).encode()


def test_manifest_parses_into_descriptors():
    m = parse_manifest(manifest())
    assert m.config.digest == D1
    assert m.layers == (Descriptor(MT_OCI_LAYER_GZIP, D2, 20),)


def test_docker_schema2_manifest_is_accepted():
    doc = json.loads(manifest())
    doc["mediaType"] = MT_DOCKER_MANIFEST
    doc["config"]["mediaType"] = "application/vnd.docker.container.image.v1+json"
    doc["layers"][0]["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    assert parse_manifest(json.dumps(doc).encode()).media_type == MT_DOCKER_MANIFEST


@pytest.mark.parametrize(("over", "error", "match"), [
    ({"schemaVersion": 1}, UnsupportedImage, "schema 2"),
    ({"manifests": []}, InvalidImage, "image index"),
    ({"layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
                  "digest": D2, "size": 1}]}, UnsupportedImage, "zstd"),
    ({"layers": [{"mediaType": "text/plain", "digest": D2, "size": 1}]},
     UnsupportedImage, "not supported"),
    ({"layers": [{"mediaType": MT_OCI_LAYER_GZIP, "digest": "sha256:../../etc/passwd",
                  "size": 1}]}, InvalidImage, "64 lowercase hex"),
    ({"layers": [{"mediaType": MT_OCI_LAYER_GZIP, "digest": "sha512:" + "a" * 128,
                  "size": 1}]}, UnsupportedImage, "only sha256"),
    ({"layers": [{"mediaType": MT_OCI_LAYER_GZIP, "digest": D2, "size": -1}]},
     InvalidImage, "size"),
    ({"config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": D1,
                 "size": 1}}, UnsupportedImage, "not an image config"),
    ({"layers": "nope"}, InvalidImage, "layers"),
])
def test_bad_manifests_are_refused(over, error, match):
    with pytest.raises(error, match=match):
        parse_manifest(manifest(**over))


def test_manifest_media_type_must_agree_with_its_descriptor():
    with pytest.raises(InvalidImage, match="referred to as"):
        parse_manifest(manifest(), MT_DOCKER_MANIFEST)


def test_not_json_and_too_large_are_refused():
    with pytest.raises(InvalidImage, match="not JSON"):
        parse_manifest(b"{nope")
    with pytest.raises(InvalidImage, match="limit"):
        parse_manifest(b" " * (5 << 20))


def test_config_fields_are_typed():
    cfg = parse_config(json.dumps({
        "created": "2024-01-01T00:00:00Z", "architecture": "amd64", "os": "linux",
        "config": {"Env": ["A=1", "PATH=/bin"], "Cmd": ["sh", "-c", "x"], "Entrypoint": [],
                   "WorkingDir": "/app", "User": "1000:1000",
                   "ExposedPorts": {"8080/tcp": {}, "53/udp": {}}, "Volumes": {"/data": {}},
                   "StopSignal": "SIGQUIT", "Labels": {"a": "b"},
                   "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000}},
        "rootfs": {"type": "layers", "diff_ids": [D1]},
        "history": [{"created_by": "x", "empty_layer": True}],
    }).encode())
    c = cfg.config
    assert c.env == ("A=1", "PATH=/bin") and c.env_map()["PATH"] == "/bin"
    assert c.cmd == ("sh", "-c", "x") and c.entrypoint == ()
    assert (c.working_dir, c.user, c.stop_signal) == ("/app", "1000:1000", "SIGQUIT")
    assert c.exposed_ports == ("53/udp", "8080/tcp") and c.volumes == ("/data",)
    assert c.labels == {"a": "b"} and c.healthcheck == {"Test": ["CMD", "true"],
                                                         "Interval": 1000000000}
    assert cfg.diff_ids == (D1,) and cfg.history[0].empty_layer
    assert (cfg.architecture, cfg.os, cfg.created) == ("amd64", "linux", "2024-01-01T00:00:00Z")


def test_unset_cmd_differs_from_empty_cmd():
    cfg = parse_config(b'{"rootfs": {"type": "layers", "diff_ids": []}}')
    assert cfg.config.cmd is None and cfg.config.entrypoint is None and cfg.config.env == ()


@pytest.mark.parametrize("doc", [
    {"rootfs": {"type": "other", "diff_ids": []}},
    {"rootfs": {"type": "layers", "diff_ids": ["md5:x"]}},
    {"rootfs": {"type": "layers", "diff_ids": []}, "config": {"Env": "A=1"}},
    {"rootfs": {"type": "layers", "diff_ids": []}, "config": {"Labels": {"a": 1}}},
    {"rootfs": {"type": "layers", "diff_ids": []}, "config": {"User": 0}},
])
def test_bad_configs_are_refused(doc):
    with pytest.raises(InvalidImage):
        parse_config(json.dumps(doc).encode())


def test_made_config_and_manifest_are_deterministic_and_round_trip():
    a = make_config([D2], created="1970-01-01T00:00:00Z", created_by="t", env=["P=1"])
    b = make_config([D2], created="1970-01-01T00:00:00Z", created_by="t", env=["P=1"])
    assert a == b
    layer = Descriptor(MT_OCI_LAYER_GZIP, D2, 5)
    m = parse_manifest(make_manifest(a, [layer]))
    assert m.config.digest == sha256_digest(a) and m.config.size == len(a)
    assert m.layers == (layer,)
    assert parse_config(a).config.cmd == ("sh",)


def test_canonical_json_sorts_keys_without_spaces():
    assert canonical_json({"b": 1, "a": [1, 2]}) == b'{"a":[1,2],"b":1}'


def test_digest_hex_never_yields_a_path():
    assert digest_hex(D1) == "1" * 64
    for bad in ("sha256:" + "A" * 64, "sha256:/etc/passwd", "1" * 64, None):
        with pytest.raises(InvalidImage):
            digest_hex(bad)  # type: ignore[arg-type]
