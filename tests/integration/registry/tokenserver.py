"""A token server for the docker token auth spec, for tests: issues RS256 JWTs for the
scopes asked, to one user, signed with a key whose self-signed certificate the registry
trusts (rootcertbundle). Signing goes through the openssl command, so the tests need no
crypto library; the `kid` header is the libtrust key id docker-registry looks keys up by.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

SERVICE = "skiff-test-registry"
ISSUER = "skiff-test-issuer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_kid(spki_der: bytes) -> str:
    """docker/libtrust's key id: base32 of the first 240 bits of sha256(SPKI DER), in
    groups of four joined by colons."""
    b32 = base64.b32encode(hashlib.sha256(spki_der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))


@dataclass
class SigningKey:
    key: Path
    cert: Path
    kid: str

    @classmethod
    def make(cls, base: Path) -> SigningKey:
        key, cert = base / "token.key", base / "token.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", str(key), "-out", str(cert), "-days", "2",
                        "-subj", "/CN=skiff-test-token-issuer"],
                       check=True, capture_output=True, timeout=60)
        der = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform",
                              "DER"], check=True, capture_output=True, timeout=30).stdout
        return cls(key, cert, libtrust_kid(der))

    def sign(self, claims: dict[str, object]) -> str:
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        signing_input = (_b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                         + _b64url(json.dumps(claims, separators=(",", ":")).encode()))
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)],
                             input=signing_input.encode(), check=True, capture_output=True,
                             timeout=30).stdout
        return signing_input + "." + _b64url(sig)


@dataclass
class TokenServer:
    key: SigningKey
    user: str
    password: str
    requests: list[dict[str, object]] = field(default_factory=list)

    def _granted(self, request: web.Request) -> tuple[str, bool]:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return "", True  # anonymous: a token, but with no access
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user, (user, password) == (self.user, self.password)

    async def token(self, request: web.Request) -> web.Response:
        user, ok = self._granted(request)
        scopes = request.query.getall("scope", [])
        self.requests.append({"user": user, "scopes": scopes, "ok": ok})
        if not ok:
            return web.json_response({"details": "wrong credentials"}, status=401)
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind == "repository" and user:
                access.append({"type": kind, "name": name,
                               "actions": [a for a in actions.split(",") if a]})
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": user, "aud": request.query.get("service", ""),
                  "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": secrets.token_hex(8), "access": access}
        import asyncio
        token = await asyncio.to_thread(self.key.sign, claims)
        return web.json_response({"token": token, "expires_in": 300})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/token", self.token)
        return app
