#!/usr/bin/env bash
# What `make bench` needs besides Python and the servers (scripts/services.sh):
# wrk, the load generator of the HTTP benches. Installed with apt-get when it is
# missing and this user is root or may sudo without a password. Otherwise the
# benches fall back to their own asyncio load generator (bench/<context>/http_load.py):
# it works everywhere but, being Python too, takes CPU from the servers under
# test on a small machine, so every variant's figures come out lower.
set -uo pipefail

if command -v wrk >/dev/null 2>&1; then
    exit 0
fi
fallback() {
    echo "bench-tools: $1; the HTTP bench will use its Python load generator (--load python)" >&2
    exit 0
}
command -v apt-get >/dev/null 2>&1 || fallback "wrk is missing and there is no apt-get"
if [ "$(id -u)" -eq 0 ]; then
    as_root() { "$@"; }
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root() { sudo -n "$@"; }
else
    fallback "wrk is missing and installing it needs root or sudo"
fi
echo "bench-tools: installing wrk" >&2
export DEBIAN_FRONTEND=noninteractive
as_root apt-get install -y -q wrk >/dev/null 2>&1 \
    || { as_root apt-get update -q >/dev/null 2>&1 \
        && as_root apt-get install -y -q wrk >/dev/null 2>&1; } \
    || fallback "apt-get could not install wrk"
command -v wrk >/dev/null 2>&1 || fallback "wrk is still not on PATH after apt-get"
echo "bench-tools: $(wrk --version 2>&1 | head -1)" >&2
