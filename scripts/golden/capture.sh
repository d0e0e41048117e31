#!/usr/bin/env bash
# Re-captures the golden bytes (see capture.py). Installs the clients into a cached venv.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${KAFKIT_CACHE:-$HOME/.cache/kafkit}/pyenv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -r "$here/../python-clients.txt"
exec "$venv/bin/python" "$here/capture.py"
