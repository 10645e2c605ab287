#!/usr/bin/env bash
# Make a Debian base image (bookworm, debootstrap's minbase variant) and import it into a
# skiff image store as debian:bookworm, for apps that need more than busybox. No Docker
# Hub: the packages come from the Debian mirror this machine's apt uses.
#
#   deploy/base-image.sh [--store DIR] [--cache-dir DIR] [--mirror URL] [--ref NAME:TAG]
#
#   --store      image store root (default: $SKIFF_IMAGE_STORE, else the local agent's,
#                /var/lib/skiff/agent/images)
#   --cache-dir  where the rootfs tarball is kept (default: $SKIFF_CACHE_DIR, else
#                /var/cache/skiff)
#   --mirror     Debian mirror (default: $SKIFF_DEBIAN_MIRROR, else the first apt source
#                for bookworm in /etc/apt/sources.list*, else http://deb.debian.org/debian)
#   --ref        tag to import as (default debian:bookworm)
#   --print-mirror  print the mirror it would use, and stop
#
# Made once: nothing is done when the store has the image already, and debootstrap runs
# only when the cache holds no tarball (CACHE/debian-bookworm-minbase-ARCH.tar.gz); delete
# it to make a fresh one. Each step prints one "base-image:" line saying what it did.
# Needs root (debootstrap) and debootstrap itself (deploy/setup.sh installs it).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$repo/.venv/bin/python"
[ -x "$python" ] || python="${PYTHON:-python3}"
skiff() { PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" "$python" -m skiff.cli.main "$@"; }

suite=bookworm
store="${SKIFF_IMAGE_STORE:-/var/lib/skiff/agent/images}"
cache="${SKIFF_CACHE_DIR:-/var/cache/skiff}"
mirror="${SKIFF_DEBIAN_MIRROR:-}"
ref="debian:$suite"
print_mirror=0
while [ $# -gt 0 ]; do
    case "$1" in
        --store) store="$2"; shift 2 ;;
        --cache-dir) cache="$2"; shift 2 ;;
        --mirror) mirror="$2"; shift 2 ;;
        --ref) ref="$2"; shift 2 ;;
        --print-mirror) print_mirror=1; shift ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "base-image: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

# The mirror apt uses for $suite: one-line sources (deb [opts] URI SUITE ...) first, then
# deb822 .sources paragraphs (Types: deb, URIs:, Suites: listing $suite, not Enabled: no).
apt_mirror() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
            awk -v s="$suite" '$1 == "deb" && $3 == s { print $2; exit }'
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        grep -v '^[[:space:]]*#' "$f" | awk -v s="$suite" '
            BEGIN { RS = ""; FS = "\n" }
            {
                types = uris = suites = ""; enabled = "yes"
                for (i = 1; i <= NF; i++) {
                    key = tolower($i); sub(/:.*/, "", key); val = $i; sub(/^[^:]*:[ \t]*/, "", val)
                    if (key == "types") types = " " val " "
                    else if (key == "uris") uris = val
                    else if (key == "suites") suites = " " val " "
                    else if (key == "enabled") enabled = tolower(val)
                }
                if (enabled != "no" && index(types, " deb ") && index(suites, " " s " ")) {
                    split(uris, u, /[ \t]+/); print u[1]; exit
                }
            }'
    done
}

if [ -z "$mirror" ]; then
    mirror="$(apt_mirror | head -n 1)"
    mirror="${mirror:-http://deb.debian.org/debian}"
fi
if [ "$print_mirror" = 1 ]; then
    echo "$mirror"
    exit 0
fi

if skiff image history "$ref" --store "$store" >/dev/null 2>&1; then
    echo "base-image: $ref is in $store already; nothing to do"
    exit 0
fi

arch="$(dpkg --print-architecture)"
tarball="$cache/debian-$suite-minbase-$arch.tar.gz"
if [ -f "$tarball" ]; then
    echo "base-image: using the cached rootfs $tarball"
else
    if ! command -v debootstrap >/dev/null; then
        echo "base-image: debootstrap not found; install it (deploy/setup.sh does)" >&2
        exit 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "base-image: debootstrap needs root" >&2
        exit 1
    fi
    mkdir -p "$cache"
    work="$(mktemp -d "$cache/.base-image.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    echo "base-image: running debootstrap --variant=minbase $suite from $mirror" \
         "(a minute or more; log in $work/debootstrap.log while it runs)"
    started=$SECONDS
    if ! debootstrap --variant=minbase "$suite" "$work/rootfs" "$mirror" \
            >"$work/debootstrap.log" 2>&1; then
        echo "base-image: debootstrap failed; the end of its log:" >&2
        tail -n 20 "$work/debootstrap.log" >&2
        exit 1
    fi
    # What an image should not carry: downloaded package lists and .debs (apt-get update
    # fetches fresh ones), this machine's name and resolver (the runtime writes its own).
    rm -rf "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/cache/apt/archives/*.deb \
           "$work"/rootfs/var/cache/apt/*.bin "$work"/rootfs/var/log/*.log
    : > "$work/rootfs/etc/hostname"
    rm -f "$work/rootfs/etc/resolv.conf"
    # Owners as numbers: the image's users are the rootfs's, not this machine's.
    tar --numeric-owner --xattrs -C "$work/rootfs" -czf "$work/rootfs.tar.gz" .
    mv "$work/rootfs.tar.gz" "$tarball"  # whole or not at all: a killed run leaves no half
    echo "base-image: debootstrap done in $((SECONDS - started))s; rootfs cached in $tarball"
fi

out="$(skiff image import "$tarball" "$ref" --store "$store")"
echo "base-image: imported $out into $store"
