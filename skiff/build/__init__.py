"""The pure front half of `skiff build`, shared by the CLI and the agent's builder:
Dockerfile parsing (`parse_dockerfile`), the build-time environment and per-step variable
expansion (`scope`), stage selection for `--target` (`stages`), .dockerignore matching
(`ignore`), context packing with a size limit (`context`) and the COPY source checks
(`safepath`). No I/O here but reading the context and the files named."""

from skiff.build.context import (
    DEFAULT_CONTEXT_LIMIT,
    MAX_UPLOAD_BYTES,
    ContextEntry,
    ContextListing,
    ContextStream,
    PackedContext,
    pack_context,
    scan_context,
    write_context,
)
from skiff.build.dockerfile import parse_dockerfile
from skiff.build.errors import (
    BuildError,
    ContextError,
    ContextTooLarge,
    DockerfileError,
    IgnoreError,
    SourceError,
    UnsafePath,
)
from skiff.build.expand import expand
from skiff.build.ignore import IgnoreRules, ignore_file_for, load_ignore
from skiff.build.instructions import Dockerfile, Stage
from skiff.build.safepath import (
    check_source_pattern,
    expand_sources,
    has_glob,
    is_remote,
    resolve_in_context,
)
from skiff.build.scope import (
    Scope,
    expand_from,
    expand_instruction,
    global_scope,
    platform_args,
    stage_scope,
    step,
)
from skiff.build.stages import (
    SourceRef,
    find_stage,
    needed_stages,
    resolve_base,
    resolve_copy_from,
    target_stage,
    unused_build_args,
)

__all__ = [
    "DEFAULT_CONTEXT_LIMIT",
    "MAX_UPLOAD_BYTES",
    "BuildError",
    "ContextEntry",
    "ContextError",
    "ContextListing",
    "ContextStream",
    "ContextTooLarge",
    "Dockerfile",
    "DockerfileError",
    "IgnoreError",
    "IgnoreRules",
    "PackedContext",
    "Scope",
    "SourceError",
    "SourceRef",
    "Stage",
    "UnsafePath",
    "check_source_pattern",
    "expand",
    "expand_from",
    "expand_instruction",
    "expand_sources",
    "find_stage",
    "global_scope",
    "has_glob",
    "ignore_file_for",
    "is_remote",
    "load_ignore",
    "needed_stages",
    "pack_context",
    "parse_dockerfile",
    "platform_args",
    "resolve_base",
    "resolve_copy_from",
    "resolve_in_context",
    "scan_context",
    "stage_scope",
    "step",
    "target_stage",
    "unused_build_args",
    "write_context",
]
