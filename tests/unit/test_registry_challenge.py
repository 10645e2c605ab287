"""WWW-Authenticate parsing and the bearer token cache (no network)."""

from __future__ import annotations

import time

import pytest

from agent.images.registry.auth import Authenticator, Token, basic_header, parse_token_response
from agent.images.registry.challenge import Challenge, parse_www_authenticate, pick
from agent.images.registry.credentials import Credentials


def test_bearer_challenge_with_quoted_params() -> None:
    [c] = parse_www_authenticate(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:team/app:pull,push"')
    assert c.scheme == "bearer"
    assert c.realm == "https://auth.example.com/token"
    assert c.service == "registry.example.com"
    assert c.scope == "repository:team/app:pull,push"  # the comma inside quotes stays


def test_basic_challenge_and_case_and_escapes() -> None:
    [c] = parse_www_authenticate('BASIC Realm="a \\"quoted\\" realm"')
    assert c == Challenge("basic", {"realm": 'a "quoted" realm'})


def test_several_challenges_and_token68_values() -> None:
    cs = parse_www_authenticate('Basic realm="r", Bearer realm="https://t/x", error=invalid_token')
    assert [c.scheme for c in cs] == ["basic", "bearer"]
    assert cs[1].params == {"realm": "https://t/x", "error": "invalid_token"}
    assert pick(cs) is cs[1]  # bearer preferred: it carries scopes


@pytest.mark.parametrize("header", ["", "   ", 'Bearer realm="unterminated', "=junk"])
def test_malformed_headers_do_not_raise(header: str) -> None:
    cs = parse_www_authenticate(header)
    assert all(isinstance(c, Challenge) for c in cs)


def test_unknown_schemes_are_not_picked() -> None:
    assert pick(parse_www_authenticate('Negotiate abc, Digest realm="x"')) is None


def test_token_response_parsing() -> None:
    now = 1000.0
    t = parse_token_response({"token": "abc", "expires_in": 300}, now)
    assert t.value == "abc" and 1200 < t.expires < 1300
    t = parse_token_response({"access_token": "xyz"}, now)  # OAuth2 spelling, default ttl
    assert t.value == "xyz" and t.expires > now
    with pytest.raises(ValueError):
        parse_token_response({"expires_in": 3}, now)
    with pytest.raises(ValueError):
        parse_token_response(["token"], now)


def test_tokens_are_cached_per_scope_until_expiry() -> None:
    auth = Authenticator("r:5000", None)
    auth.challenge = Challenge("bearer", {"realm": "http://t/token"})
    now = time.monotonic()
    auth.tokens["repository:a:pull"] = Token("A", now + 60)
    auth.tokens["repository:b:pull"] = Token("B", now - 1)  # expired
    assert auth.header("repository:a:pull") == "Bearer A"
    assert auth.header("repository:b:pull") is None
    assert auth.header("repository:c:pull") is None


def test_basic_auth_header_after_a_basic_challenge() -> None:
    creds = Credentials("u", "p:w")
    auth = Authenticator("r:5000", creds)
    assert auth.header("") is None  # nothing sent before the registry asks
    auth.challenge = Challenge("basic", {"realm": "x"})
    assert auth.header("any") == basic_header(creds) == "Basic dTpwOnc="
    assert "p:w" not in repr(creds)
