#!/usr/bin/env bash
# Build the busybox base image from Debian's busybox-static and import it as
# busybox:latest into a skiff image store (Docker Hub is out of reach here).
#
#   deploy/make-busybox-image.sh [--store DIR] [--busybox PATH] [--ref NAME:TAG]
#
#   --store    image store root (default /var/lib/skiff/images; each lab node's agent
#              passes its own)
#   --busybox  the static busybox binary (default /bin/busybox, from busybox-static)
#   --ref      tag to import as (default busybox:latest)
#
# Idempotent and reproducible: the layer tar is sorted with fixed mtimes and owners, so the
# same busybox binary always gives the same image digest and running again adds nothing.
# The work is done by agent/images/busybox.py (build_busybox_image), which tests call too.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$repo/.venv/bin/python"
[ -x "$python" ] || python="${PYTHON:-python3}"

if [ ! -x /bin/busybox ] && [[ " $* " != *" --busybox "* ]]; then
    echo "make-busybox-image: /bin/busybox not found; install busybox-static" \
         "(deploy/setup.sh does)" >&2
    exit 1
fi

cd "$repo"
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m agent.images.busybox "$@"
