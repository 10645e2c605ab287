"""An asyncio client for the controller's HTTP API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import aiohttp

from skiff.models.kinds import Kind


class ApiError(Exception):
    """An error answer from the controller, or no answer at all."""

    def __init__(self, status: int, code: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


def object_path(kind: Kind, name: str, app: str | None = None) -> str:
    if kind.namespaced:
        if app is None:
            raise ValueError(f"{kind.plural} are named APP/NAME")
        return f"/api/v1/{kind.plural}/{app}/{name}"
    return f"/api/v1/{kind.plural}/{name}"


class ApiClient:
    """``server`` may list several controllers, comma-separated: every controller serves
    the API, so when one cannot be reached the client moves on to the next."""

    def __init__(self, server: str, token: str | None, timeout: float = 30.0) -> None:
        self.servers = [s.strip().rstrip("/") for s in server.split(",") if s.strip()]
        if not self.servers:
            raise ValueError("no controller URL given")
        self.server = self.servers[0]
        self.token = token
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            self._session = aiohttp.ClientSession(headers=headers)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _raise_for(self, resp: aiohttp.ClientResponse) -> None:
        if resp.status < 400:
            return
        try:
            body = await resp.json(content_type=None)
            raise ApiError(resp.status, body["code"], body["message"], body.get("details"))
        except (ValueError, KeyError, TypeError, aiohttp.ContentTypeError):
            text = await resp.text()
            raise ApiError(resp.status, "HTTP", f"HTTP {resp.status}: {text[:200]}") from None

    def _next_server(self) -> None:
        self.server = self.servers[(self.servers.index(self.server) + 1) % len(self.servers)]

    async def request(self, method: str, path: str, *, body: Any = None,
                      params: dict[str, str] | None = None) -> Any:
        for attempt in range(len(self.servers)):
            try:
                async with self.session.request(
                    method, self.server + path, json=body, params=params,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                ) as resp:
                    await self._raise_for(resp)
                    return await resp.json()
            except aiohttp.ClientConnectorError as exc:
                # The connection was never made, so nothing reached a server: trying the
                # next one is safe even for a request that is not idempotent.
                if attempt == len(self.servers) - 1:
                    raise ApiError(0, "Unreachable", f"cannot reach the controller at "
                                   f"{', '.join(self.servers)}: {exc}") from None
                self._next_server()
            except aiohttp.ClientConnectionError as exc:
                self._next_server()  # for the next request; this one may have landed
                raise ApiError(0, "Unreachable", f"lost the controller at "
                               f"{self.server}: {exc}") from None
            except TimeoutError:
                raise ApiError(0, "Timeout", f"no answer from {self.server} in "
                               f"{self.timeout:.0f}s") from None
        raise AssertionError("unreachable")

    async def version(self) -> dict[str, Any]:
        return await self.request("GET", "/api/v1/version")

    async def list(self, kind: Kind, **filters: str) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v is not None}
        return await self.request("GET", f"/api/v1/{kind.plural}", params=params)

    async def get(self, kind: Kind, name: str, app: str | None = None) -> dict[str, Any]:
        return await self.request("GET", object_path(kind, name, app))

    async def update(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return await self.request("PUT", object_path(kind, meta["name"], meta.get("app")),
                                  body=obj)

    async def delete(self, kind: Kind, name: str, app: str | None = None,
                     resource_version: int | None = None) -> dict[str, Any]:
        params = {"resourceVersion": str(resource_version)} if resource_version else None
        return await self.request("DELETE", object_path(kind, name, app), params=params)

    async def create_network(self, body: dict[str, Any]) -> dict[str, Any]:
        """A standalone network: a Network object, or {name, subnet, internal, ...}."""
        return await self.request("POST", "/api/v1/networks", body=body)

    async def apply(self, manifest: dict[str, Any], *, source: str, dry_run: bool = False,
                    resource_version: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"manifest": manifest, "source": source, "dryRun": dry_run}
        if resource_version is not None:
            body["resourceVersion"] = resource_version
        return await self.request("POST", "/api/v1/apply", body=body)

    async def build(self, options: dict[str, Any], context: AsyncIterator[bytes], *,
                    image: str | None = None, node: str | None = None
                    ) -> AsyncIterator[dict[str, Any]]:
        """Upload a build (the options, then the context tar as it is read) and yield
        the JSON lines the building agent reports, as they come."""
        params = {k: v for k, v in (("image", image), ("node", node)) if v}
        with aiohttp.MultipartWriter("form-data") as body:
            part = body.append_json(options)
            part.set_content_disposition("form-data", name="options")
            part = body.append(context, {"Content-Type": "application/x-tar"})
            part.set_content_disposition("form-data", name="context", filename="context.tar")
        try:
            async with self.session.post(
                f"{self.server}/api/v1/builds", data=body, params=params,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout),
            ) as resp:
                await self._raise_for(resp)
                async for line in resp.content:
                    if line.strip():
                        try:
                            yield json.loads(line)
                        except ValueError:
                            raise ApiError(0, "BadAnswer", "the build stream carried "
                                           f"{line[:80]!r}") from None
        except aiohttp.ClientConnectionError as exc:
            raise ApiError(0, "Unreachable", f"lost the controller at {self.server} during "
                           f"the build: {exc}") from None

    async def watch(self, kind: Kind, resource_version: int | None = None,
                    **filters: str) -> AsyncIterator[dict[str, Any]]:
        """Events forever: reconnects from the last resourceVersion it saw; on "Expired"
        it relists (yielding the fresh objects as ADDED) and carries on."""
        since = resource_version
        delay = 0.2
        while True:
            params = {"watch": "1", **{k: v for k, v in filters.items() if v is not None}}
            if since is not None:
                params["resourceVersion"] = str(since)
            try:
                async with self.session.get(
                    f"{self.server}/api/v1/{kind.plural}", params=params,
                    timeout=aiohttp.ClientTimeout(total=None, sock_read=60),
                ) as resp:
                    if resp.status == 410:
                        since = None  # too old: start over from a fresh list
                        continue
                    await self._raise_for(resp)
                    delay = 0.2
                    async for line in resp.content:
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        if event["type"] == "ERROR":
                            if event["object"].get("code") == "Expired":
                                since = None
                                break
                            obj = event["object"]
                            raise ApiError(500, obj.get("code", "Error"), obj.get("message", ""))
                        if event["type"] == "BOOKMARK":
                            since = event["object"]["metadata"]["resourceVersion"]
                            continue
                        if since is not None:
                            # During an initial list (since None) objects come in key
                            # order, not revision order: only its closing bookmark counts.
                            since = event["object"]["metadata"]["resourceVersion"]
                        yield event
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError):
                self._next_server()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- what agents call ----------------------------------------------------------

    async def register_node(self, node: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", "/api/v1/nodes", body=node)

    async def put_node_status(self, name: str, status: dict[str, Any]) -> dict[str, Any]:
        return await self.request("PUT", f"/api/v1/nodes/{name}/status", body=status)

    async def put_task_status(self, app: str, name: str,
                              status: dict[str, Any]) -> dict[str, Any]:
        return await self.request("PUT", f"/api/v1/tasks/{app}/{name}/status", body=status)

    async def new_agent_secret(self, node: str) -> str:
        answer = await self.request("POST", f"/api/v1/nodes/{node}/agent-secret")
        return str(answer["secret"])

    async def join(self, name: str) -> str:
        """Trade this client's join token for the node's own credential."""
        answer = await self.request("POST", "/api/v1/join", body={"name": name})
        return str(answer["token"])

    async def create_join_token(self, ttl_seconds: int | None) -> dict[str, Any]:
        return await self.request("POST", "/api/v1/tokens",
                                  body={"role": "join", "ttlSeconds": ttl_seconds})

    # -- inside tasks --------------------------------------------------------------

    async def task_logs(self, app: str, name: str, *, tail: int | None = None,
                        follow: bool = False, timestamps: bool = False
                        ) -> AsyncIterator[bytes]:
        params = {"follow": "1" if follow else "0", "timestamps": "1" if timestamps else "0"}
        if tail is not None:
            params["tail"] = str(tail)
        try:
            async with self.session.get(
                f"{self.server}/api/v1/tasks/{app}/{name}/logs", params=params,
                timeout=aiohttp.ClientTimeout(total=None if follow else self.timeout),
            ) as resp:
                await self._raise_for(resp)
                async for line in resp.content:
                    yield line
        except aiohttp.ClientConnectionError as exc:
            raise ApiError(0, "Unreachable",
                           f"cannot reach the controller at {self.server}: {exc}") from None

    async def task_exec(self, app: str, name: str, cmd: list[str],
                        timeout: float = 60.0) -> dict[str, Any]:
        saved, self.timeout = self.timeout, timeout + 15
        try:
            return await self.request("POST", f"/api/v1/tasks/{app}/{name}/exec",
                                      body={"cmd": cmd, "timeout": timeout})
        finally:
            self.timeout = saved
