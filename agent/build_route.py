"""`POST /v1/builds` on the agent's HTTP server: the controller forwards a `skiff build`
here. The body is multipart: `options` (JSON, agent/build/request.py) then `context` (the
tar skiff.build.context packs). The answer streams one JSON object per line (see
agent/build/service.py), so the CLI shows each step as it happens; it is HTTP 200 once
streaming began, and the last line says whether the build succeeded.

The context is written to a file under the build work dir, counted against the
documented limit as it arrives, and removed when the request ends, whatever happened."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from agent.build.request import MAX_OPTIONS_BYTES, BadBuildRequest, parse_build_request
from agent.build.service import BuildService
from agent.images.errors import ImageError
from skiff.build.context import MAX_UPLOAD_BYTES
from skiff.build.errors import BuildError, ContextTooLarge

BUILD_SERVICE = web.AppKey("build_service", BuildService)
_DONE = object()


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message, "details": {}}, status=status)


async def _read_part(part: BodyPartReader, limit: int) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk():
        data += chunk
        if len(data) > limit:
            raise BadBuildRequest(f"the build options exceed {limit} bytes")
    return bytes(data)


async def _save_context(part: BodyPartReader, path: Path, limit: int) -> int:
    size = 0
    f = await asyncio.to_thread(open, path, "wb")
    try:
        while chunk := await part.read_chunk(1 << 20):
            size += len(chunk)
            if size > limit:
                raise ContextTooLarge(size, limit)
            await asyncio.to_thread(f.write, chunk)
    finally:
        await asyncio.to_thread(f.close)
    return size


async def post_build(request: web.Request) -> web.StreamResponse:
    service = request.app[BUILD_SERVICE]
    uploads = service.work_dir / "uploads"
    await asyncio.to_thread(uploads.mkdir, parents=True, exist_ok=True)
    context = uploads / f"context-{secrets.token_hex(8)}.tar"
    try:
        return await _serve(request, service, context)
    finally:
        await asyncio.to_thread(context.unlink, missing_ok=True)


async def _serve(request: web.Request, service: BuildService,
                 context: Path) -> web.StreamResponse:
    try:
        reader = await request.multipart()
        part = await reader.next()
        if not isinstance(part, BodyPartReader) or part.name != "options":
            raise BadBuildRequest("the upload must start with the `options` part")
        options = parse_build_request(json.loads(await _read_part(part, MAX_OPTIONS_BYTES)))
        part = await reader.next()
        if not isinstance(part, BodyPartReader) or part.name != "context":
            raise BadBuildRequest("the upload must carry the `context` part after `options`")
        await _save_context(part, context, MAX_UPLOAD_BYTES)
    except ContextTooLarge as exc:
        return _error(413, "ContextTooLarge", str(exc))
    except (BadBuildRequest, ValueError, UnicodeDecodeError) as exc:
        return _error(400, "BadRequest", f"bad build request: {exc}")

    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    lines: asyncio.Queue[Any] = asyncio.Queue()

    async def produce() -> None:
        try:
            outcome = await service.run(options, context, lines.put_nowait)
            lines.put_nowait({"result": outcome.to_wire()})
        except BuildError as exc:
            lines.put_nowait({"error": {"code": "BuildFailed", "message": str(exc)}})
        except ImageError as exc:
            lines.put_nowait({"error": {"code": "ImageError", "message": str(exc)}})
        except OSError as exc:
            lines.put_nowait({"error": {"code": "BuildFailed",
                                        "message": f"build failed on node {service.node}: {exc}"}})
        finally:
            lines.put_nowait(_DONE)

    worker = asyncio.create_task(produce())
    try:
        while (item := await lines.get()) is not _DONE:
            await response.write(json.dumps(item).encode() + b"\n")
        await response.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        # The CLI went away (Ctrl-C): stop the build; the builder removes its work files.
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await worker
        raise
    await worker
    return response
