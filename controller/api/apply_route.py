"""POST /api/v1/apply: validate a compose document on the server and store the app."""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from controller.api.authz import authorize
from controller.api.body import read_json
from controller.api.errors import bad_request, invalid
from controller.api.network_checks import check_app, refusal
from controller.api.state import BIND_PREFIXES, STORE
from controller.api.volume_checks import volume_problems
from controller.apply import apply_app
from controller.auth.policy import Access
from skiff.manifest import ManifestError, load_document
from skiff.models.codec import encode
from skiff.models.kinds import VOLUME


async def apply(request: web.Request) -> web.Response:
    authorize(request, Access("apply", "App"))
    body = await read_json(request)
    if not isinstance(body, dict) or "manifest" not in body:
        raise bad_request('expected {"manifest": {...compose document...}, "dryRun": false}')
    source = body.get("source") or "<api>"
    dry_run = body.get("dryRun", False)
    expect = body.get("resourceVersion")
    if not isinstance(source, str) or not isinstance(dry_run, bool):
        raise bad_request("source must be a string and dryRun a boolean")
    if expect is not None and (isinstance(expect, bool) or not isinstance(expect, int)):
        raise bad_request("resourceVersion must be an integer")
    try:
        loaded = load_document(body["manifest"], source=source)
    except ManifestError as exc:
        problems = [dataclasses.asdict(p) for p in exc.problems]
        raise invalid(f"{source}: invalid manifest\n{exc}", problems) from None
    # Clashes with other apps and networks are refused before anything is written (a
    # dry run says so too); only the App is ever written, so a refusal leaves no trace.
    await check_app(request.app[STORE], loaded.app, source)
    stored_volumes, _ = await request.app[STORE].list(VOLUME)
    refused, volume_warnings = volume_problems(
        loaded.app, {v.metadata.name for v in stored_volumes}, request.app[BIND_PREFIXES])
    if refused:
        raise refusal(refused, source)
    result = await apply_app(request.app[STORE], loaded.app, dry_run=dry_run,
                             resource_version=expect)
    out: dict[str, Any] = {
        "action": result.action,
        "dryRun": result.dry_run,
        "app": encode(result.app),
        "services": [encode(s) for s in result.services],
        "otherChanges": result.other_changes,
        "warnings": loaded.warnings + volume_warnings,
    }
    return web.json_response(out)
