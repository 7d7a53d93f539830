#!/usr/bin/env bash
# Installs Debian packages non-interactively: apt-get update at most once an hour (a fresh
# machine has no package lists), then apt-get install. Uses sudo when not root.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 PACKAGE..." >&2
    exit 2
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "apt-get not found: install $* with your system's package manager" >&2
    exit 1
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "need root (or sudo) to install: $*" >&2
        exit 1
    fi
    sudo=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
marker="${TMPDIR:-/tmp}/fhir-agenda-apt-updated"
if [ -z "$(find "$marker" -mmin -60 2>/dev/null)" ]; then
    "${sudo[@]}" apt-get update -q
    touch "$marker"
fi
# </dev/null: never wait for an answer (CI has no stdin); confold: keep existing config files.
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" </dev/null
