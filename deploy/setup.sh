#!/usr/bin/env bash
# Set up a Debian 12 machine for skiff, as root. Safe to run again: it installs only
# what is missing and leaves a working `skiff` on PATH.
#
#   system parts: etcd-server, runc, busybox-static, docker-registry, nftables, iproute2,
#                 debootstrap (deploy/base-image.sh)
#   python:       a venv in <repo>/.venv with skiff installed editable, plus test extras
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ "$(id -u)" -ne 0 ]; then
    echo "deploy/setup.sh: run as root (it installs system packages)" >&2
    exit 1
fi

packages=(etcd-server etcd-client runc busybox-static tini docker-registry nftables iproute2
          debootstrap python3 python3-venv python3-pip ca-certificates procps)
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

python="${PYTHON:-python3}"
if [ ! -x "$repo/.venv/bin/python" ]; then
    echo "setup: creating $repo/.venv"
    "$python" -m venv "$repo/.venv"
fi
"$repo/.venv/bin/pip" install --quiet --disable-pip-version-check -e "$repo[test]"
ln -sf "$repo/.venv/bin/skiff" /usr/local/bin/skiff
echo "setup: done ($("$repo/.venv/bin/skiff" --help >/dev/null && echo "skiff on PATH"))"
