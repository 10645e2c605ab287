#!/bin/sh
# Install the app's dependencies (deps.txt) into /app/bin: a link per tool to the base
# image's busybox, after checking busybox provides it. Deterministic and offline.
set -eu
list="${1:-deps.txt}"
mkdir -p /app/bin
missing=""
for tool in $(sed -e 's/#.*//' "$list"); do
    if busybox --list | grep -qx "$tool"; then
        ln -sf /bin/busybox "/app/bin/$tool"
        echo "installed $tool"
    else
        missing="$missing $tool"
    fi
done
if [ -n "$missing" ]; then
    echo "missing from the base image:$missing" >&2
    exit 1
fi
