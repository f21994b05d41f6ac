#!/usr/bin/env bash
# Installs the official MCP Python SDK (pinned in interop/python-requirements.txt) into a
# virtualenv in a cache directory, once, and prints the virtualenv's directory (its bin/ holds
# the python that runs interop/python_session.py).
# Usage: python-tools.sh <name of the cache directory, the project's>
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/${1:?usage: python-tools.sh NAME}"
key="$(sha256sum <"$here/python-requirements.txt" | cut -c1-16)"
dir="$cache/python-tools-$key"

if [ -e "$dir/.ready" ]; then
  echo "$dir"
  exit 0
fi
rm -rf "$dir"
python3 -m venv "$dir" >&2
"$dir/bin/pip" install --quiet --disable-pip-version-check -r "$here/python-requirements.txt" >&2
touch "$dir/.ready"
echo "$dir"
