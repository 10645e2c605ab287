"""One registry's HTTP client: base URL, authentication, bounded retries, error bodies.

Retries: a connection error, a timeout or a 5xx answer is tried again after a doubling
back-off, up to `RetryPolicy.attempts` in all, then RegistryUnreachable names the
registry and the last cause. A 401 is answered by authenticating (auth.py) and retrying
once. Other answers outside `ok` raise RegistryError with the registry's own error text
(the distribution spec's {"errors": [{"code", "message"}]}).
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
from collections.abc import AsyncIterator, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp

from agent.images.registry.auth import Authenticator
from agent.images.registry.credentials import Credentials
from agent.images.registry.endpoint import base_url
from agent.images.registry.errors import (
    RegistryAuthError,
    RegistryError,
    RegistryUnreachable,
    RemoteNotFound,
)

log = logging.getLogger(__name__)

# A body to send: bytes, a file (re-opened on every attempt, streamed), or nothing.
Body = bytes | Path | None


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    backoff: float = 0.5       # before the second attempt; doubles after each failure
    max_backoff: float = 5.0
    connect_timeout: float = 10.0
    # Between reads, not in total: a large layer may take minutes on a slow link.
    read_timeout: float = 60.0

    def delays(self) -> Iterable[float]:
        delay = self.backoff
        for _ in range(self.attempts - 1):
            yield delay
            delay = min(delay * 2, self.max_backoff)


def error_text(status: int, body: bytes) -> str:
    """`404 MANIFEST_UNKNOWN: manifest unknown` from a distribution error body, or the
    status and the start of whatever the body was."""
    import json

    try:
        errors = json.loads(body).get("errors")
        parts = [f"{e.get('code', '?')}: {e.get('message', '')}".rstrip(": ")
                 for e in errors if isinstance(e, dict)]
        if parts:
            return f"{status} {'; '.join(parts)}"
    except (ValueError, AttributeError, TypeError):
        pass
    text = body[:200].decode(errors="replace").strip()
    if not text:
        with contextlib.suppress(ValueError):
            text = http.HTTPStatus(status).phrase
    return f"{status} {text}" if text else str(status)


@contextlib.contextmanager
def transport_errors(registry: str) -> Iterator[None]:
    """Whatever aiohttp raises past the retries (a body cut short while reading a small
    document) as a RegistryError naming the registry, never a bare aiohttp error."""
    try:
        yield
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise RegistryError(f"registry {registry}: {exc or type(exc).__name__}") from None


class RegistryClient:
    """Use as `async with RegistryClient(...) as c:`; requests go through c.request."""

    def __init__(self, registry: str, *, credentials: Credentials | None = None,
                 insecure: Collection[str] = (), retry: RetryPolicy | None = None) -> None:
        self.registry = registry
        self.base = base_url(registry, insecure)
        self.retry = retry or RetryPolicy()
        self.auth = Authenticator(registry, credentials)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RegistryClient:
        timeout = aiohttp.ClientTimeout(total=None, connect=self.retry.connect_timeout,
                                        sock_read=self.retry.read_timeout)
        self._session = aiohttp.ClientSession(timeout=timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("RegistryClient used outside `async with`")
        return self._session

    def url(self, path_or_url: str) -> str:
        """Absolute URL for an API path, or a Location header (absolute or relative)."""
        return urljoin(self.base + "/", path_or_url)

    @contextlib.asynccontextmanager
    async def request(self, method: str, path: str, *, scope: str,
                      headers: Mapping[str, str] | None = None, body: Body = None,
                      params: Mapping[str, str] | None = None,
                      ok: Collection[int] = (200,),
                      what: str = "") -> AsyncIterator[aiohttp.ClientResponse]:
        """The response (open, body unread) once its status is in `ok`. `what` names the
        object for errors ("manifest app:1"); 404 raises RemoteNotFound."""
        url = self.url(path)
        what = what or f"{method} {path}"
        delays = iter(self.retry.delays())
        attempt, reauthed = 0, False
        while True:
            attempt += 1
            stack = contextlib.AsyncExitStack()
            try:
                resp = await self._send(stack, method, url, headers, body, params, scope)
                if resp.status in ok:
                    break  # the stack stays open: the caller reads the body
                if resp.status == 401 and not reauthed:
                    reauthed = True
                    challenge = resp.headers.get("WWW-Authenticate", "")
                    if await self.auth.on_unauthorized(self.session, challenge, scope):
                        attempt -= 1  # authenticating is not a failed attempt
                        await stack.aclose()
                        continue
                raw = await resp.read()
                status = resp.status
                await stack.aclose()
            except (TimeoutError, aiohttp.ClientConnectionError,
                    aiohttp.ClientPayloadError) as exc:
                await stack.aclose()
                await self._backoff(delays, attempt, str(exc) or type(exc).__name__)
                continue
            except BaseException:
                await stack.aclose()
                raise
            if status >= 500:
                await self._backoff(delays, attempt, f"{what}: {error_text(status, raw)}")
                continue
            text = f"registry {self.registry}: {what}: {error_text(status, raw)}"
            if status in (401, 403):
                hint = "" if self.auth.creds else \
                    f" (no credentials: `skiff login {self.registry}`?)"
                raise RegistryAuthError(f"{text}{hint}")
            if status == 404:
                raise RemoteNotFound(text)
            raise RegistryError(text)
        # Outside the retry loop: an error while the caller streams the body is the
        # caller's to handle, never a reason to send the request again from here.
        async with stack:
            yield resp

    async def _send(self, stack: contextlib.AsyncExitStack, method: str, url: str,
                    headers: Mapping[str, str] | None, body: Body,
                    params: Mapping[str, str] | None, scope: str) -> aiohttp.ClientResponse:
        hdrs = dict(headers or {})
        auth = self.auth.header(scope)
        if auth:
            hdrs["Authorization"] = auth
        data: Any = body
        if isinstance(body, Path):
            # Re-opened per attempt; aiohttp reads it off the event loop.
            data = stack.enter_context(await asyncio.to_thread(open, body, "rb"))
            size = (await asyncio.to_thread(body.stat)).st_size
            hdrs.setdefault("Content-Length", str(size))
        return await stack.enter_async_context(self.session.request(
            method, url, headers=hdrs, data=data, params=params))

    async def _backoff(self, delays: Iterator[float], attempt: int, cause: str) -> None:
        """Sleep before the next attempt, or raise RegistryUnreachable if none is left."""
        delay = next(delays, None)
        if delay is None:
            raise RegistryUnreachable(f"registry {self.registry} unreachable after "
                                      f"{attempt} attempts: {cause}")
        log.info("registry %s: %s (attempt %d); retrying in %.1fs", self.registry, cause,
                 attempt, delay)
        await asyncio.sleep(delay)

    async def check(self) -> None:
        """GET /v2/: the registry speaks the v2 API and accepts our credentials (for
        a bearer registry: the token server issues a token for them)."""
        async with self.request("GET", "/v2/", scope="", what="API check"):
            pass
