"""`build`: a Dockerfile and a context tar → an image in the node's store.

The front half (skiff.build) parses the Dockerfile, picks the stages `--target` needs and
expands each instruction; here each step is done, or found in the layer cache (cache.py):
FROM (an image from the store or the cluster registry, an earlier stage, scratch), RUN in
a runc container (runstep.py), COPY/ADD (sources.py) and the metadata instructions
(metadata.py). Stages are built in Dockerfile order, each only once; the image is the
target stage's state, so nothing of the other stages is in it.

Decisions:
- Every step is a cache lookup, metadata included, so a fully cached rebuild reports
  every step CACHED and yields the very same image digest (history times come from the
  cache). FROM and ARG do no work and always report CACHED (FROM reports its time when it
  had to pull).
- WORKDIR creates its directory as a (small) layer when the image lacks it, as BuildKit
  does, so the image runs on any runtime; the directory is root-owned, 0755.
- RUN's environment is the ENV so far plus the ARG values in scope; ARG values are in
  the RUN's cache key but never in the image config.
- Work files (the unpacked context, overlay mounts, upper dirs, bundles) live in a fresh
  directory under `work_dir`, removed when the build ends, whatever the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.build import overlay
from agent.build.cache import BuildCache, CacheEntry, step_key
from agent.build.context_tar import unpack_tar
from agent.build.diff import DiffError, upper_entries
from agent.build.errors import BuildError, RunFailed
from agent.build.events import BuildEvent, BuildResult, StepResult
from agent.build.layers import BuildLayers
from agent.build.metadata import METADATA, apply_metadata, shell_of, workdir_of
from agent.build.runstep import Network, RunSetupError, RunSpec, run_in_container
from agent.build.sources import (
    CopyJob,
    copy_entries,
    find_sources,
    mkdir_entries,
    parse_chown,
    resolve_dest,
    tree_digest,
)
from agent.build.state import ImageState, image_config_json, state_from_image
from agent.images import fsutil
from agent.images.errors import ImageError
from agent.images.models import Image
from agent.images.node_images import NodeImages
from agent.images.oci import host_platform, make_manifest, sha256_digest
from agent.images.store import ImageStore
from agent.runtime import host as runtime_host
from agent.runtime.runc import Runc
from agent.runtime.spec import HostFacts
from skiff.build import instructions as ins
from skiff.build.dockerfile import parse_dockerfile
from skiff.build.errors import SourceError
from skiff.build.scope import Scope, global_scope, platform_args, stage_scope, step
from skiff.build.stages import (
    SourceRef,
    needed_stages,
    resolve_base,
    resolve_copy_from,
    unused_build_args,
)

Progress = Callable[[BuildEvent], None]
UNTAGGED_NAME = "build"  # an image built without -t is kept as build@sha256:...


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def build(store: ImageStore, images: NodeImages | None, context_tar: Path,
                dockerfile_text: str, *, dockerfile_name: str = "Dockerfile",
                tag: str | None, build_args: Mapping[str, str] | None = None,
                target: str | None = None, no_cache: bool = False, work_dir: Path,
                progress: Progress, network: Network = "host",
                runc_root: Path | None = None, runc_binary: str = "runc",
                cgroup_parent: str = "skiff-build",
                host_facts: HostFacts | None = None) -> BuildResult:
    """Build `dockerfile_text` with the context in `context_tar` (as skiff.build.context
    packs it) and add the image to `store`, tagged `tag` if given. Base images not in the
    store come through `images` (the cluster registry), if given. Raises
    skiff.build.BuildError: DockerfileError for the Dockerfile itself, SourceError (and
    UnsafePath) for COPY sources, agent.build.BuildError for a step that failed; nothing
    of a failed build is left behind but the cache entries of the steps that succeeded."""
    await store.open()
    dockerfile = parse_dockerfile(dockerfile_text, dockerfile_name)
    args = dict(build_args or {})
    automatic = platform_args(*host_platform())
    stages = needed_stages(dockerfile, target, args, automatic)
    warnings = list(dockerfile.warnings)
    unused = unused_build_args(dockerfile, args, stages)
    if unused:
        warnings.append(f"build args not consumed by any ARG: {', '.join(unused)}")
    for warning in warnings:
        progress(BuildEvent("warning", text=warning))
    work = Path(work_dir) / fsutil.temp_name("build")
    await asyncio.to_thread(work.mkdir, parents=True)
    cache = BuildCache(store.root)
    await asyncio.to_thread(cache.open)
    runner = _Builder(
        store=store, images=images, dockerfile=dockerfile, context_tar=Path(context_tar),
        globals_=global_scope(dockerfile, args, automatic), no_cache=no_cache, work=work,
        progress=progress, cache=cache, layers=BuildLayers(store, cache), network=network,
        runc=Runc(Path(runc_root) if runc_root else work / "runc", runc_binary),
        cgroup_parent=cgroup_parent, host_facts=host_facts)
    try:
        for stage in stages:
            runner.results[stage.index] = await runner.build_stage(stage)
        image = await runner.commit(runner.results[stages[-1].index], tag)
    finally:
        runner.layers.release()
        await asyncio.shield(asyncio.to_thread(overlay.remove_unmounted, work))
    return BuildResult(image, runner.steps, warnings)


class _Builder:
    def __init__(self, *, store: ImageStore, images: NodeImages | None,
                 dockerfile: ins.Dockerfile, context_tar: Path, globals_: Scope,
                 no_cache: bool, work: Path, progress: Progress, cache: BuildCache,
                 layers: BuildLayers, network: Network, runc: Runc, cgroup_parent: str,
                 host_facts: HostFacts | None) -> None:
        self.store = store
        self.images = images
        self.dockerfile = dockerfile
        self.source = dockerfile.source
        self.context_tar = context_tar
        self.globals_ = globals_
        self.no_cache = no_cache
        self.work = work
        self.progress = progress
        self.cache = cache
        self.layers = layers
        self.network = network
        self.runc = runc
        self.cgroup_parent = cgroup_parent
        self.host_facts = host_facts
        self.results: dict[int, ImageState] = {}
        self.steps: list[StepResult] = []
        self.build_id = secrets.token_hex(6)
        self._context: Path | None = None
        self._context_lock = asyncio.Lock()
        self._serial = 0

    def _scratch_dir(self, what: str) -> Path:
        self._serial += 1
        return self.work / f"{what}-{self._serial}"

    def _fail(self, line: int | None, message: str, **kw: Any) -> BuildError:
        return BuildError(self.source, line, message, **kw)

    # ---- stages -------------------------------------------------------------------------
    async def build_stage(self, stage: ins.Stage) -> ImageState:
        label = stage.label
        total = 1 + len(stage.instructions)

        async def timed(number: int, instruction: ins.Instruction,
                        run: Callable[[], Any]) -> Any:
            self.progress(BuildEvent("step", label, number, total, instruction.original))
            start = time.monotonic()
            try:
                state, cached, diff_id = await run()
            except Exception as exc:
                self.progress(BuildEvent("failed", label, number, total,
                                         instruction.original, text=str(exc)))
                raise
            seconds = time.monotonic() - start
            self.progress(BuildEvent("cached" if cached else "done", label, number, total,
                                     instruction.original, seconds=seconds))
            self.steps.append(StepResult(label, number, total, instruction.original,
                                         instruction.line, cached, seconds, diff_id))
            return state

        async def from_step() -> tuple[ImageState, bool, None]:
            state, cached = await self.base_state(resolve_base(self.dockerfile, stage,
                                                               self.globals_),
                                                  stage.from_.line)
            return state, cached, None

        state: ImageState = await timed(1, stage.from_, from_step)
        if state.config.get("OnBuild"):
            self.progress(BuildEvent("warning", label, text="the base image has ONBUILD "
                                     "triggers; skiff does not run them"))
        scope = stage_scope(self.globals_, state.env_map())
        cmd_set = False
        for number, instruction in enumerate(stage.instructions, start=2):
            expanded, after = step(scope, instruction)
            parent, before = state, scope

            async def one(parent: ImageState = parent, expanded: ins.Instruction = expanded,
                          before: Scope = before, instruction: ins.Instruction = instruction,
                          cmd_set: bool = cmd_set
                          ) -> tuple[ImageState, bool, str | None]:
                return await self.do_step(stage, parent, instruction, expanded, before,
                                          cmd_set)

            state = await timed(number, instruction, one)
            scope = after
            cmd_set = cmd_set or isinstance(expanded, ins.Cmd)
        return state

    async def base_state(self, ref: SourceRef, line: int) -> tuple[ImageState, bool]:
        """(state, whether it was there without a pull)."""
        if ref.kind == "scratch":
            return ImageState(), True
        if ref.kind == "stage":
            assert ref.stage is not None
            return self.results[ref.stage], True
        return await self.image_state(ref.image, line)

    async def image_state(self, name: str, line: int) -> tuple[ImageState, bool]:
        try:
            image = await self.store.resolve(name)
            local = image is not None
            if image is None:
                if self.images is None:
                    raise self._fail(line, f"image {name} is not in this node's store (and "
                                     "no registry was given to pull it from)")
                image = await self.images.ensure(name)
            raw = json.loads(await self.store.read_blob(image.id))
        except ImageError as exc:
            raise self._fail(line, f"image {name}: {exc}") from None
        return state_from_image(image, raw), local

    # ---- one step -----------------------------------------------------------------------
    async def do_step(self, stage: ins.Stage, parent: ImageState, instruction: ins.Instruction,
                      expanded: ins.Instruction, scope: Scope, cmd_set: bool
                      ) -> tuple[ImageState, bool, str | None]:
        if isinstance(expanded, ins.Arg):
            return parent, True, None
        if isinstance(expanded, ins.Run):
            args = {k: v for k, v in scope.args.items() if v is not None}
            return await self._cached(parent, expanded, {"args": args},
                                      lambda: self.run(parent, instruction, expanded, scope))
        if isinstance(expanded, ins.Copy | ins.Add):
            return await self.copy(stage, parent, instruction, expanded)
        if isinstance(expanded, METADATA):
            return await self._cached(parent, expanded, {},
                                      lambda: self.metadata(parent, instruction, expanded,
                                                            cmd_set))
        raise self._fail(instruction.line, f"{instruction.keyword} is not supported here")

    async def _cached(self, parent: ImageState, expanded: ins.Instruction,
                      extra: Mapping[str, Any], work: Callable[[], Any]
                      ) -> tuple[ImageState, bool, str | None]:
        key = step_key(parent, expanded, extra)
        if not self.no_cache:
            hit = await asyncio.to_thread(self.cache.get, key, self.layers.has_blob)
            if hit is not None:
                return hit.apply(parent), True, hit.layer.diff_id if hit.layer else None
        entry: CacheEntry = await work()
        await asyncio.to_thread(self.cache.put, key, entry)
        return entry.apply(parent), False, entry.layer.diff_id if entry.layer else None

    def _history(self, instruction: ins.Instruction, created: str,
                 empty: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"created": created, "created_by": instruction.original}
        if empty:
            out["empty_layer"] = True
        return out

    async def metadata(self, parent: ImageState, instruction: ins.Instruction,
                       expanded: ins.Instruction, cmd_set: bool) -> CacheEntry:
        try:
            config = apply_metadata(parent.config_copy(), expanded, cmd_set)
        except ValueError as exc:
            raise self._fail(instruction.line, str(exc)) from None
        created = _now()
        author = expanded.name if isinstance(expanded, ins.Maintainer) else None
        layer = None
        if isinstance(expanded, ins.Workdir):
            path = workdir_of(dict(parent.config), expanded.path)
            async with self._view(parent) as rootfs:
                entries = await asyncio.to_thread(mkdir_entries, rootfs, path)
            if entries:
                layer = await self.layers.write(entries)
        return CacheEntry(layer, config, self._history(instruction, created, layer is None),
                          created, author)

    @contextlib.asynccontextmanager
    async def _view(self, state: ImageState) -> AsyncIterator[Path]:
        lowers = await self.layers.lower_dirs(state)
        try:
            async with overlay.view(self._scratch_dir("view"), lowers) as rootfs:
                yield rootfs
        except overlay.MountError as exc:
            raise self._fail(None, str(exc)) from None

    # ---- RUN ----------------------------------------------------------------------------
    async def run(self, parent: ImageState, instruction: ins.Instruction, run: ins.Run,
                  scope: Scope) -> CacheEntry:
        config = dict(parent.config)
        argv = run.command.argv(shell_of(config))
        if not argv:
            raise self._fail(instruction.line, "RUN has no command")
        if self.host_facts is None:
            self.host_facts = await asyncio.to_thread(runtime_host.gather)
        step_dir = self._scratch_dir("run")
        spec = RunSpec(container_id=f"skiff-build-{self.build_id}-{self._serial}",
                       argv=argv, env=scope.run_env(),
                       cwd=config.get("WorkingDir") or "/", user=config.get("User") or None,
                       network=self.network, cgroup_parent=self.cgroup_parent)
        label = instruction.original

        def emit(text: str) -> None:
            self.progress(BuildEvent("output", instruction=label, text=text))

        try:
            lowers = await self.layers.lower_dirs(parent)
            upper = await run_in_container(spec, lowers, step_dir, self.runc,
                                           self.host_facts, emit)
            entries = await asyncio.to_thread(upper_entries, upper)
            layer = await self.layers.write(entries)
        except RunFailed as exc:
            raise self._fail(instruction.line, f"{_short(instruction)}: the command failed "
                             f"with exit code {exc.exit_code}", exit_code=exc.exit_code,
                             output=exc.output) from None
        except (RunSetupError, DiffError, overlay.MountError, ImageError) as exc:
            raise self._fail(instruction.line, f"{_short(instruction)}: {exc}") from None
        finally:
            await asyncio.shield(asyncio.to_thread(overlay.remove_unmounted, step_dir))
        created = _now()
        return CacheEntry(layer, config, self._history(instruction, created, False), created)

    # ---- COPY / ADD ---------------------------------------------------------------------
    async def context_dir(self) -> Path:
        async with self._context_lock:
            if self._context is None:
                target = self.work / "context"
                try:
                    await asyncio.to_thread(unpack_tar, self.context_tar, target)
                except (ImageError, OSError) as exc:
                    raise self._fail(None, f"cannot read the build context: {exc}") from None
                self._context = target
        return self._context

    @contextlib.asynccontextmanager
    async def _copy_source(self, stage: ins.Stage, instruction: ins.Instruction,
                           from_: str | None) -> AsyncIterator[tuple[Path, str | None]]:
        """The root to copy from, and the id of the state it belongs to (for the key)."""
        if from_ is None:
            yield await self.context_dir(), None
            return
        assert isinstance(instruction, ins.Copy)
        ref = resolve_copy_from(self.dockerfile, stage, instruction, from_)
        if ref.kind == "stage":
            assert ref.stage is not None
            if ref.stage not in self.results:
                # --from named through a variable of the base image's ENV, which stage
                # selection (before any pull) could not see.
                raise self._fail(instruction.line, f"COPY --from={from_}: stage {ref.stage} "
                                 "was not built (a --from set from the base image's ENV?)")
            state = self.results[ref.stage]
        else:
            state, _ = await self.image_state(ref.image, instruction.line)
        async with self._view(state) as rootfs:
            yield rootfs, state.state_id()

    async def copy(self, stage: ins.Stage, parent: ImageState, instruction: ins.Instruction,
                   expanded: ins.Copy | ins.Add) -> tuple[ImageState, bool, str | None]:
        keyword = instruction.keyword
        from_ = expanded.from_ if isinstance(expanded, ins.Copy) else None
        try:
            async with self._copy_source(stage, instruction, from_) as (root, from_id):
                sources = await asyncio.to_thread(find_sources, root, expanded.sources,
                                                  in_context=from_ is None, keyword=keyword)
                digest = await asyncio.to_thread(tree_digest, sources)
                dest = resolve_dest(expanded.dest, str(parent.config.get("WorkingDir") or "/"))

                async def work() -> CacheEntry:
                    async with self._view(parent) as rootfs:
                        def plan() -> list[Any]:
                            owner = parse_chown(expanded.chown, rootfs) \
                                if expanded.chown else None
                            job = CopyJob(keyword, sources, dest, owner,
                                          int(expanded.chmod, 8) if expanded.chmod else None,
                                          unpack_archives=isinstance(expanded, ins.Add),
                                          unpack=self._unpack_archive)
                            return copy_entries(job, rootfs)

                        entries = await asyncio.to_thread(plan)
                        layer = await self.layers.write(entries)
                    created = _now()
                    return CacheEntry(layer, dict(parent.config),
                                      self._history(instruction, created, False), created)

                return await self._cached(parent, expanded,
                                          {"sources": digest, "from": from_id}, work)
        except SourceError as exc:  # UnsafePath among them: kept as the cause
            raise self._fail(instruction.line, str(exc)) from exc
        except OSError as exc:
            raise self._fail(instruction.line, f"{keyword}: {exc}") from None

    def _unpack_archive(self, archive: Path) -> Path:
        """Blocking (called from copy_entries' thread): an ADD archive unpacked."""
        target = self._scratch_dir("add")
        try:
            unpack_tar(archive, target)
        except ImageError as exc:
            raise SourceError(f"ADD {archive.name}: cannot unpack: {exc}") from None
        return target

    # ---- the image ----------------------------------------------------------------------
    async def commit(self, state: ImageState, tag: str | None) -> Image:
        config = image_config_json(state)
        manifest = make_manifest(config, [x.descriptor for x in state.layers])
        sources = [await asyncio.to_thread(self.layers.blob_for_store, x)
                   for x in state.layers]
        ref = tag or f"{UNTAGGED_NAME}@{sha256_digest(manifest)}"
        try:
            return await self.store.add_image(manifest, config, sources, ref=ref)
        except ImageError as exc:
            raise self._fail(None, f"cannot store the image: {exc}") from None


def _short(instruction: ins.Instruction, limit: int = 60) -> str:
    text = " ".join(instruction.original.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
