#!/usr/bin/env bash
# Runs uv, installing it first on a fresh machine (from PyPI, into the current
# Python) and syncing the locked environment. Every make target goes through here.
set -euo pipefail
export UV_PYTHON_DOWNLOADS=never
if ! python3 -m uv --version >/dev/null 2>&1; then
    echo "keel: installing uv into $(python3 -c 'import sys; print(sys.prefix)')" >&2
    python3 -m pip install --quiet --disable-pip-version-check uv
fi
cd "$(dirname "$0")/.."
python3 -m uv sync --frozen --all-groups --quiet
exec python3 -m uv "$@"
