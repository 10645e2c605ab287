"""The image builder (the back half of `skiff build`): a Dockerfile and a context tar →
an OCI image in the node's store, with RUN in runc containers on overlayfs, COPY/ADD
from the context or other stages, a layer cache shared across builds, multi-stage and
`--target`. The front half (parsing, expansion, stage selection, context packing, source
checks) is skiff.build.

    builder.py     build(): stages and steps, the cache lookups, the final image
    state.py       the image a stage has built so far, and its cache identity
    cache.py       cache keys and entries under <store>/build-cache
    metadata.py    config changes of ENV, LABEL, CMD... (pure)
    runstep.py     one RUN in a runc container
    overlay.py     overlay mounts: a RUN's writable rootfs, read-only views
    diff.py        a RUN's upper dir → layer entries with OCI whiteouts
    sources.py     COPY/ADD sources, their digest, and the entries they make
    context_tar.py unpacking the context and ADD archives
    layers.py      layer blobs and unpacked layer dirs
    events.py      BuildEvent, StepResult, BuildResult
    errors.py      BuildError
"""

from agent.build.builder import build
from agent.build.errors import BuildError
from agent.build.events import BuildEvent, BuildResult, StepResult

__all__ = ["BuildError", "BuildEvent", "BuildResult", "StepResult", "build"]
