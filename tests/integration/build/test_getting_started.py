"""manifests/getting-started built by the real builder (runc, overlayfs, the layer cache):
its context leaves out what .dockerignore names; a rebuild with no change (or with only
an ignored file changed) is all CACHED and the same image; editing one source file
re-runs only the source COPY and the CMD after it, every layer before it a cache hit;
and the app itself answers in its image (httpd with the CGI, using only the tools its
install step put in /app/bin), as does the database script in the db image."""

from __future__ import annotations

import io
import secrets
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from agent.build import BuildResult, build
from skiff.build.context import pack_context
from skiff.build.ignore import load_ignore
from tests.integration.build.conftest import BuildEnv

pytestmark = [pytest.mark.integration, pytest.mark.slow]

APP = Path(__file__).resolve().parents[3] / "manifests" / "getting-started"
SOURCE_COPY = "COPY src/ ./"


def _pack(context: Path) -> bytes:
    out = io.BytesIO()
    pack_context(context, out, load_ignore(context))
    return out.getvalue()


async def build_app(env: BuildEnv, dockerfile: str | None = None, *,
                    tag: str | None = "getting-started:1", **kw: Any) -> BuildResult:
    """Build env.context (the app, packed honouring its .dockerignore as the CLI packs it)
    with its Dockerfile, or `dockerfile`."""
    context = env.context
    if dockerfile is None:
        dockerfile = (context / "Dockerfile").read_text()
    tar = env.base / f"context-{secrets.token_hex(4)}.tar"
    tar.write_bytes(_pack(context))
    env.events.clear()
    try:
        return await build(env.store, None, tar, dockerfile, tag=tag,
                           work_dir=env.work_dir, progress=env.events.append,
                           runc_root=env.runc_root, cgroup_parent=env.cgroup_parent, **kw)
    finally:
        tar.unlink()


@pytest.fixture
def app(env: BuildEnv) -> BuildEnv:
    """env with a copy of manifests/getting-started as its context (edits stay in the
    temp dir)."""
    shutil.copytree(APP, env.context, symlinks=True, dirs_exist_ok=True)
    return env


def _deps(context: Path) -> list[str]:
    lines = (context / "deps.txt").read_text().splitlines()
    return [x for x in (line.split("#", 1)[0].strip() for line in lines) if x]


def _reran(result: BuildResult) -> list[str]:
    return [s.instruction for s in result.steps if not s.cached]


def test_context_leaves_out_what_dockerignore_names(tmp_path: Path) -> None:
    shutil.copytree(APP, tmp_path / "app", symlinks=True)
    with tarfile.open(fileobj=io.BytesIO(_pack(tmp_path / "app"))) as tar:
        names = set(tar.getnames())
    assert {"Dockerfile", "deps.txt", "install-deps.sh", "src/www/index.html",
            "src/www/cgi-bin/items", "db/serve.sh"} <= names
    assert not {"README.md", "compose.yml", "compose.dev.yml", ".dockerignore"} & names


async def test_rebuilds_reuse_every_layer_before_the_source(app: BuildEnv) -> None:
    first = await build_app(app)
    instructions = [s.instruction for s in first.steps]
    assert instructions[0] == "FROM busybox"
    assert _reran(first) == instructions[1:]  # a cold cache: every step ran
    assert [f"installed {tool}" for tool in _deps(app.context)] == app.output()
    source = instructions.index(SOURCE_COPY)
    after_source = first.steps[source + 1:]
    # the seed's order: nothing that makes a layer, and no RUN, after the source COPY
    assert all(s.diff_id is None for s in after_source), after_source
    assert not any(s.instruction.startswith("RUN") for s in after_source)

    again = await build_app(app)
    assert _reran(again) == []
    assert again.image.digest == first.image.digest
    assert app.output() == []  # nothing ran

    # a file .dockerignore leaves out changes nothing
    readme = app.context / "README.md"
    readme.write_text(readme.read_text() + "\nOne more line.\n")
    ignored = await build_app(app)
    assert _reran(ignored) == []
    assert ignored.image.digest == first.image.digest

    # one source file edited: only the source COPY makes a new layer; the steps after it
    # (metadata only) follow their new parent
    page = app.context / "src" / "www" / "index.html"
    page.write_text(page.read_text().replace("<h1>Todo</h1>", "<h1>My todo list</h1>"))
    edited = await build_app(app)
    assert [s.instruction for s in edited.steps if s.cached] == instructions[:source]
    assert _reran(edited) == instructions[source:]
    assert [s.instruction for s in edited.steps if not s.cached and s.diff_id] == \
        [SOURCE_COPY]
    assert app.output() == []  # the install did not run again
    assert edited.image.diff_ids[:-1] == first.image.diff_ids[:-1]
    assert edited.image.diff_ids[-1] != first.image.diff_ids[-1]
    assert edited.image.digest != first.image.digest
    # and that rebuilt again is all cached, the same image
    settled = await build_app(app)
    assert _reran(settled) == []
    assert settled.image.digest == edited.image.digest


# Raw HTTP requests to `httpd -i` (inetd mode: the request on stdin, the answer on
# stdout), so the app's httpd and CGI run as they do behind port 3000, with no network.
# PATH is only /app/bin: the app must run on what its install step put there. Each
# answer ends with a line "[end]".
PROBE = r"""FROM getting-started:1
RUN PATH=/app/bin; export PATH; \
    /bin/ls /app/bin; echo "[end]"; \
    get() { printf 'GET %s HTTP/1.0\r\n\r\n' "$1" | httpd -i -h /app/www; echo; echo "[end]"; }; \
    post() { printf 'POST %s HTTP/1.0\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s' \
        "$1" application/x-www-form-urlencoded ${#2} "$2" | httpd -i -h /app/www; \
        echo "[end]"; }; \
    get /; get /cgi-bin/items; \
    post /cgi-bin/items 'item=buy+milk%21'; post /cgi-bin/items 'item=walk%20the+dog'; \
    get /cgi-bin/items; cat "$DATA_DIR/todo.txt"
"""


def _answers(lines: list[str]) -> list[list[str]]:
    """The probe's output split at its "[end]" lines (carriage returns dropped)."""
    answers: list[list[str]] = [[]]
    for line in lines:
        if line.rstrip("\r") == "[end]":
            answers.append([])
        else:
            answers[-1].append(line.rstrip("\r"))
    return answers


def _body(answer: list[str]) -> tuple[str, list[str]]:
    """(status line, body lines without trailing blank ones) of one HTTP answer."""
    blank = answer.index("")
    body = answer[blank + 1:]
    while body and body[-1] == "":
        body.pop()
    return answer[0], body


async def test_the_app_answers_in_its_image(app: BuildEnv) -> None:
    image = (await build_app(app)).image
    assert image.config.env_map()["DATA_DIR"] == "/data"
    probe = await build_app(app, PROBE, tag=None)
    assert [s.split()[0] for s in _reran(probe)] == ["RUN"]  # the app's steps cached
    tools, page, empty, first, second, listing, stored = _answers(app.output())
    assert tools == sorted(_deps(app.context))  # the install step linked every tool
    status, html = _body(page)
    assert status == "HTTP/1.1 200 OK"
    assert "<h1>Todo</h1>" in html
    assert "Content-Type: text/plain; charset=utf-8" in empty
    assert _body(empty) == ("HTTP/1.1 200 OK", [])
    assert _body(first) == ("HTTP/1.1 200 OK", ["buy milk!"])
    assert _body(second) == ("HTTP/1.1 200 OK", ["buy milk!", "walk the dog"])
    assert _body(listing) == ("HTTP/1.1 200 OK", ["buy milk!", "walk the dog"])
    assert stored == ["buy milk!", "walk the dog"]  # in the file under DATA_DIR


DB_PROBE = r"""FROM getting-started-db:1
RUN printf 'ADD milk\n' | sh /db/serve.sh; echo "[add]"; \
    printf 'ADD  eggs and ham\r\n' | sh /db/serve.sh; echo "[list]"; \
    printf 'LIST\n' | sh /db/serve.sh; echo "[bad]"; \
    printf 'DROP everything\n' | sh /db/serve.sh
"""


async def test_the_database_script_answers_in_its_image(app: BuildEnv) -> None:
    dockerfile = (app.context / "db.Dockerfile").read_text()
    await build_app(app, dockerfile, tag="getting-started-db:1")
    await build_app(app, DB_PROBE, tag=None)
    assert app.output() == ["milk", "[add]", "milk", "eggs and ham", "[list]", "milk",
                            "eggs and ham", "[bad]", "ERROR unknown request DROP"]
