"""The agent's own small HTTP server: task logs, exec and builds, for the controller only.

The controller presents the secret this agent handed it at registration; nothing else
is accepted. Containers are found by task (app/name), never by a path from the request.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from agent.build.service import BuildService
from agent.build_route import BUILD_SERVICE, post_build
from agent.runtime import logs
from agent.runtime.container import ContainerState, Runtime
from agent.runtime.runc import RuncError, RuncTimeout

MAX_EXEC_TIMEOUT = 600.0

# (app, task name) → container directory and id, or None if no such task here.
Locator = Callable[[str, str], tuple[Path, str] | None]


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message, "details": {}}, status=status)


def build_app(secret: Callable[[], str], locate: Locator, runtime: Runtime,
              builds: BuildService | None = None) -> web.Application:
    @web.middleware
    async def auth(request: web.Request, handler):  # type: ignore[no-untyped-def]
        header = request.headers.get("Authorization", "")
        expected = f"Bearer {secret()}"
        if not secret() or not hmac.compare_digest(header.encode(), expected.encode()):
            return _error(401, "Unauthorized", "this agent answers its controller only")
        return await handler(request)

    def where(request: web.Request) -> tuple[Path, str]:
        found = locate(request.match_info["app"], request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound(text=json.dumps({
                "code": "NotFound", "details": {},
                "message": f"task {request.match_info['name']} has no container here"}),
                content_type="application/json")
        return found

    async def get_logs(request: web.Request) -> web.StreamResponse:
        directory, _cid = where(request)
        q = request.query
        try:
            tail = int(q["tail"]) if q.get("tail") not in (None, "", "all") else None
        except ValueError:
            return _error(400, "BadRequest", f"tail={q['tail']!r} is not a number")
        timestamps = q.get("timestamps") in ("1", "true")
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await response.prepare(request)
        path = directory / "log.json"
        try:
            if q.get("follow") in ("1", "true"):
                async for line in logs.follow(path, tail, timestamps):
                    await response.write(line.encode() + b"\n")
            else:
                for line in await logs.read_logs(path, tail, timestamps):
                    await response.write(line.encode() + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            return response
        await response.write_eof()
        return response

    async def post_exec(request: web.Request) -> web.Response:
        _directory, cid = where(request)
        try:
            body = await request.json()
            cmd = body["cmd"]
            timeout = min(float(body.get("timeout", 60)), MAX_EXEC_TIMEOUT)
            if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) for c in cmd):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return _error(400, "BadRequest", 'expected {"cmd": [...], "timeout": seconds}')
        status = await runtime.status(cid)
        if status.state is not ContainerState.RUNNING:
            return _error(409, "NotRunning", f"the container is {status.state.value}")
        try:
            result = await runtime.exec(cid, cmd, timeout=timeout)
        except RuncTimeout:
            return _error(504, "Timeout", f"{cmd[0]} did not finish within {timeout:g}s")
        except RuncError as exc:
            # The process could not be started (no such program, not executable): the
            # shell's convention, 127, with runc's reason.
            return web.json_response({"exitCode": 127, "stdout": "",
                                      "stderr": f"cannot run {cmd[0]}: {exc.message}\n"})
        return web.json_response({"exitCode": result.exit_code, "stdout": result.stdout,
                                  "stderr": result.stderr})

    app = web.Application(middlewares=[auth], client_max_size=1024 * 1024)
    app.router.add_get("/v1/containers/{app}/{name}/logs", get_logs)
    app.router.add_post("/v1/containers/{app}/{name}/exec", post_exec)
    if builds is not None:
        app[BUILD_SERVICE] = builds
        app.router.add_post("/v1/builds", post_build)
    return app
