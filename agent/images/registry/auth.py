"""Authenticating to a registry: HTTP basic, or bearer tokens per the docker token spec.

The first request goes out bare; a 401 carries a WWW-Authenticate challenge. For Basic
the credentials are then sent with every request. For Bearer a token is fetched from the
challenge's realm (with the credentials as basic auth, or anonymously), for the scope the
operation needs, and cached per scope until shortly before it expires.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from agent.images.registry.challenge import Challenge, parse_www_authenticate, pick
from agent.images.registry.credentials import Credentials
from agent.images.registry.errors import RegistryAuthError, RegistryError

DEFAULT_TOKEN_TTL = 60.0  # the spec's default when a token server gives no expires_in
EXPIRY_MARGIN = 10.0      # refresh a little early: a token must not lapse mid-request


def basic_header(creds: Credentials) -> str:
    raw = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


@dataclass(frozen=True)
class Token:
    value: str
    expires: float  # time.monotonic() deadline

    def fresh(self, now: float) -> bool:
        return now < self.expires


def parse_token_response(body: Any, now: float) -> Token:
    """The token server's JSON: `token` (or OAuth2's `access_token`) and `expires_in`."""
    if not isinstance(body, dict):
        raise ValueError("token response is not a JSON object")
    value = body.get("token") or body.get("access_token")
    if not isinstance(value, str) or not value:
        raise ValueError("token response has no token")
    ttl = body.get("expires_in")
    if not isinstance(ttl, int | float) or isinstance(ttl, bool) or ttl <= 0:
        ttl = DEFAULT_TOKEN_TTL
    return Token(value, now + max(float(ttl) - EXPIRY_MARGIN, 1.0))


class Authenticator:
    """Auth state for one registry: the challenge last seen and tokens by scope."""

    def __init__(self, registry: str, creds: Credentials | None) -> None:
        self.registry = registry
        self.creds = creds
        self.challenge: Challenge | None = None
        self.tokens: dict[str, Token] = {}
        self.token_fetches = 0  # for tests and diagnostics: caching must keep this low

    def header(self, scope: str) -> str | None:
        """The Authorization header for a request needing `scope`, if one is known."""
        c = self.challenge
        if c is None:
            return None
        if c.scheme == "basic":
            return basic_header(self.creds) if self.creds else None
        token = self.tokens.get(scope)
        return f"Bearer {token.value}" if token and token.fresh(time.monotonic()) else None

    async def on_unauthorized(self, session: aiohttp.ClientSession, www_authenticate: str,
                              scope: str) -> bool:
        """Learn from a 401. True if a retry now carries new credentials; False if there
        is nothing new to try (the caller reports the 401)."""
        challenge = pick(parse_www_authenticate(www_authenticate))
        if challenge is None:
            return False
        had = self.header(scope)
        self.challenge = challenge
        if challenge.scheme == "basic":
            return self.creds is not None and had is None
        self.tokens.pop(scope, None)
        await self.fetch_token(session, scope)
        return True

    async def fetch_token(self, session: aiohttp.ClientSession, scope: str) -> Token:
        c = self.challenge
        assert c is not None and c.scheme == "bearer"
        if not c.realm:
            raise RegistryAuthError(f"registry {self.registry}: bearer challenge has no realm")
        params = {"service": c.service} if c.service else {}
        if scope:
            params["scope"] = scope
        headers = {"Authorization": basic_header(self.creds)} if self.creds else {}
        self.token_fetches += 1
        try:
            async with session.get(c.realm, params=params, headers=headers) as resp:
                if resp.status in (401, 403):
                    raise RegistryAuthError(
                        f"registry {self.registry}: the token server {c.realm} refused "
                        f"{'the credentials' if self.creds else 'anonymous access'} "
                        f"({resp.status})")
                if resp.status != 200:
                    raise RegistryError(f"registry {self.registry}: token server {c.realm} "
                                        f"answered {resp.status}")
                body = await resp.json(content_type=None)
        except aiohttp.ClientError as exc:
            raise RegistryError(f"registry {self.registry}: token server {c.realm}: "
                                f"{exc}") from None
        try:
            token = parse_token_response(body, time.monotonic())
        except ValueError as exc:
            raise RegistryError(f"registry {self.registry}: token server {c.realm}: "
                                f"{exc}") from None
        self.tokens[scope] = token
        return token
