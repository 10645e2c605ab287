"""References to registries and URLs, the insecure list, credentials file, platform
choice, digest checks, registry error bodies (no network)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from agent.images.errors import InvalidReference, UnsupportedImage
from agent.images.oci import MT_OCI_INDEX, MT_OCI_MANIFEST
from agent.images.refs import split_domain
from agent.images.registry.client import RetryPolicy, error_text
from agent.images.registry.credentials import AuthFile, Credentials
from agent.images.registry.digests import DigestVerifier, verify_bytes
from agent.images.registry.endpoint import (
    base_url,
    is_insecure,
    normalise_registry,
    parse_remote,
    scope_for,
)
from agent.images.registry.errors import DigestMismatch
from agent.images.registry.manifests import choose_platform, media_type_of

D = "sha256:" + "a" * 64


def test_split_domain() -> None:
    assert split_domain("localhost:5000/app") == ("localhost:5000", "app")
    assert split_domain("r.example.com/team/app") == ("r.example.com", "team/app")
    assert split_domain("team/app") == (None, "team/app")
    assert split_domain("busybox") == (None, "busybox")


@pytest.mark.parametrize("text,registry,repo,reference,local", [
    ("10.0.0.1:5000/app", "10.0.0.1:5000", "app", "latest", "10.0.0.1:5000/app:latest"),
    ("10.0.0.1:5000/team/app:v2", "10.0.0.1:5000", "team/app", "v2",
     "10.0.0.1:5000/team/app:v2"),
    (f"localhost/app@{D}", "localhost", "app", D, f"localhost/app@{D}"),
    (f"r.io/app:1@{D}", "r.io", "app", D, f"r.io/app:1@{D}"),
    ("busybox", "docker.io", "library/busybox", "latest", "busybox:latest"),
    ("docker.io/library/busybox:1", "docker.io", "library/busybox", "1", "busybox:1"),
    ("user/app", "docker.io", "user/app", "latest", "user/app:latest"),
])
def test_parse_remote(text: str, registry: str, repo: str, reference: str,
                      local: str) -> None:
    r = parse_remote(text)
    assert (r.registry, r.repository, r.reference, r.local) == (registry, repo, reference,
                                                                local)


def test_parse_remote_refuses_bad_refs() -> None:
    with pytest.raises(InvalidReference):
        parse_remote("Bad Name")


def test_insecure_list_and_urls() -> None:
    assert is_insecure("localhost:5000") and is_insecure("127.0.0.1:5580")
    assert is_insecure("127.3.4.5") and is_insecure("[::1]:5000")
    assert not is_insecure("10.0.0.1:5000")
    assert is_insecure("10.0.0.1:5000", ["10.0.0.1:5000"])
    assert is_insecure("10.0.0.1:5000", ["10.0.0.1"])
    assert is_insecure("10.0.0.7:5000", ["10.0.0.0/24"])
    assert not is_insecure("10.0.1.7:5000", ["10.0.0.0/24", "garbage/99"])
    assert not is_insecure("registry.example.com", ["10.0.0.0/8"])
    assert base_url("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert base_url("r.example.com") == "https://r.example.com"
    assert base_url("docker.io") == "https://registry-1.docker.io"
    assert normalise_registry("https://index.docker.io/v1/") == "docker.io"
    assert scope_for("team/app", "pull", "push") == "repository:team/app:pull,push"


def test_retry_delays_are_bounded() -> None:
    assert list(RetryPolicy(attempts=5, backoff=1, max_backoff=3).delays()) == [1, 2, 3, 3]
    assert list(RetryPolicy(attempts=1).delays()) == []


def test_error_text() -> None:
    body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN",
                                   "message": "manifest unknown"}]}).encode()
    assert error_text(404, body) == "404 MANIFEST_UNKNOWN: manifest unknown"
    assert error_text(502, b"<html>bad gateway</html>") == "502 <html>bad gateway</html>"
    assert error_text(404, b"") == "404 Not Found"
    assert error_text(599, b"") == "599"


def test_auth_file_is_0600_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "auth.json"
    auth = AuthFile(path)
    assert auth.get("r:5000") is None
    old = os.umask(0)  # even a permissive umask must not widen it
    try:
        auth.set("r:5000", Credentials("u", "p:ss"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {"auths": {"r:5000": {"auth": "dTpwOnNz"}}}
    assert auth.get("r:5000") == Credentials("u", "p:ss")
    auth.set("docker.io", Credentials("x", "y"))
    assert auth.get("index.docker.io") == Credentials("x", "y")
    assert auth.remove("r:5000") and not auth.remove("r:5000")
    assert [p.name for p in path.parent.iterdir()] == ["auth.json"]  # no temp left


def test_digest_verifier() -> None:
    data = b"hello"
    good = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    v = DigestVerifier(good, 5, "blob")
    v.update(b"hel")
    v.update(b"lo")
    v.finish()
    v = DigestVerifier(good, 4, "blob")
    with pytest.raises(DigestMismatch, match="longer than"):
        v.update(data)
    v = DigestVerifier(good, 6, "blob")
    v.update(data)
    with pytest.raises(DigestMismatch, match="5 bytes, expected 6"):
        v.finish()
    v = DigestVerifier(D, None, "blob")
    v.update(data)
    with pytest.raises(DigestMismatch, match="digest mismatch"):
        v.finish()
    verify_bytes(data, good, 5, "x")
    with pytest.raises(DigestMismatch):
        verify_bytes(b"hellO", good, 5, "x")


def _index(*platforms: tuple[str, str] | None) -> bytes:
    entries = []
    for i, plat in enumerate(platforms):
        e: dict[str, object] = {"mediaType": MT_OCI_MANIFEST,
                                "digest": f"sha256:{str(i) * 64}", "size": 10}
        if plat:
            e["platform"] = {"os": plat[0], "architecture": plat[1]}
        entries.append(e)
    return json.dumps({"schemaVersion": 2, "manifests": entries}).encode()


def test_choose_platform() -> None:
    data = _index(("linux", "arm64"), ("linux", "amd64"))
    assert choose_platform(data, ("linux", "amd64"), "x").digest == "sha256:" + "1" * 64
    with pytest.raises(UnsupportedImage, match=r"no image for linux/s390x.*linux/arm64"):
        choose_platform(data, ("linux", "s390x"), "x")
    assert choose_platform(_index(None), ("linux", "amd64"), "x").digest.endswith("0" * 64)
    assert media_type_of(data, "application/json") == MT_OCI_INDEX
    assert media_type_of(data, MT_OCI_INDEX + "; charset=utf-8") == MT_OCI_INDEX
    assert media_type_of(b'{"schemaVersion": 2, "config": {}}', None) == MT_OCI_MANIFEST
