"""Getting verified blobs into the store: stage each layer in tmp/ and check its digest,
size and diff_id (outside the store lock: hashing takes a while), then move staged files
into blobs/ (under the lock, with the index update). Blocking; the store runs it in
threads."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from agent.images import fsutil
from agent.images.compress import diff_id_of
from agent.images.errors import InvalidImage
from agent.images.models import Descriptor
from agent.images.oci import MAX_BLOB_BYTES, MAX_LAYER_BYTES, Manifest, ParsedConfig

# A layer's content for add_image: a file (moved in when it lies in the store's tmp/
# directory, copied otherwise), bytes, or None when the blob is already in the store.
BlobSource = Path | bytes | None


def stage_layers(m: Manifest, c: ParsedConfig, sources: Sequence[BlobSource],
                 blob_path: Callable[[str], Path], new_temp: Callable[[], Path],
                 owned: Callable[[Path], bool]) -> list[tuple[str, Path | None]]:
    """(digest, staged file or None if the store has it) per distinct layer blob."""
    staged: list[tuple[str, Path | None]] = []
    seen: set[str] = set()
    try:
        for i, (desc, diff_id, src) in enumerate(zip(m.layers, c.diff_ids, sources,
                                                     strict=True)):
            if desc.digest in seen:  # one blob listed twice (repeated empty layers)
                continue
            seen.add(desc.digest)
            if blob_path(desc.digest).exists():
                staged.append((desc.digest, None))
                continue
            if src is None:
                raise InvalidImage(f"layer {i} ({desc.digest}) is not in the store and no "
                                   "content was given")
            tmp = src if isinstance(src, Path) and owned(src) else new_temp()
            staged.append((desc.digest, stage_layer(i, desc, diff_id, src, tmp)))
    except BaseException:
        discard([t for _, t in staged if t is not None])
        raise
    return staged


def stage_layer(i: int, desc: Descriptor, diff_id: str, src: Path | bytes,
                tmp: Path) -> Path:
    """Copy `src` to `tmp` unless it is `tmp` already; verify it; return `tmp`. On any
    failure `tmp` is removed."""
    try:
        if tmp is not src:
            with open(tmp, "wb") as out:
                if isinstance(src, bytes):
                    out.write(src)
                else:
                    with open(src, "rb") as f:
                        fsutil.hash_stream(f, out, MAX_BLOB_BYTES, str(src))
                out.flush()
                os.fsync(out.fileno())
        got, size = fsutil.hash_file(tmp, MAX_BLOB_BYTES)
        if got != desc.digest or size != desc.size:
            raise InvalidImage(f"layer {i}: content is {got} ({size} bytes), the "
                               f"manifest says {desc.digest} ({desc.size} bytes)")
        got_diff = diff_id_of(tmp, MAX_LAYER_BYTES)
        if got_diff != diff_id:
            raise InvalidImage(f"layer {i}: uncompressed digest {got_diff} does not "
                               f"match the config's diff_id {diff_id}")
    except ValueError as exc:  # a size limit from hash_stream
        tmp.unlink(missing_ok=True)
        raise InvalidImage(f"layer {i}: {exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def move_in(tmp: Path | None, final: Path) -> None:
    """Put a staged blob at its final name. None means it was in the store at staging
    time; it must still be (a removal in between would leave the index dangling)."""
    if tmp is None:
        if not final.exists():
            raise InvalidImage(f"blob {final.name} was removed while this image was being "
                               "added; add it again")
    elif final.exists():  # content-addressed: same name, same bytes
        tmp.unlink(missing_ok=True)
    else:
        os.replace(tmp, final)


def put_bytes(data: bytes, final: Path, tmp: Path) -> None:
    if final.exists():
        return
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    move_in(tmp, final)


def discard(paths: list[Path]) -> None:
    for p in paths:
        p.unlink(missing_ok=True)
