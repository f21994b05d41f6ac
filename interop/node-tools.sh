#!/usr/bin/env bash
# Installs Node.js 22 and the pinned MCP tools (interop/package-lock.json) into a cache
# directory, once, and prints the directory whose bin/ holds `node`, `conformance`,
# `inspector`, and the OAuth check's `oauth-provider` and `oauth-client` (interop/oauth).
# The conformance suite and the Inspector need Node 22 or newer.
# Usage: node-tools.sh <name of the cache directory, the project's>
set -euo pipefail

NODE_VERSION=22.23.3
here="$(cd "$(dirname "$0")" && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/${1:?usage: node-tools.sh NAME}"
# A new pin (lock file or Node version) gets a directory of its own.
key="$( (cat "$here/package-lock.json"; echo "$NODE_VERSION") | sha256sum | cut -c1-16)"
dir="$cache/node-tools-$key"

# The OAuth scripts are ES modules, which find packages only beside the file itself (never
# through NODE_PATH), so they run from a copy here, renewed on every call to follow edits.
copy_oauth_scripts() {
  mkdir -p "$dir/oauth"
  for script in "$here"/oauth/*.mjs; do
    cp "$script" "$dir/oauth/.new.$$" && mv -f "$dir/oauth/.new.$$" "$dir/oauth/$(basename "$script")"
  done
}

if [ -e "$dir/.ready" ]; then
  copy_oauth_scripts
  echo "$dir"
  exit 0
fi

command -v npm >/dev/null || { echo "node-tools: npm is needed to fetch Node $NODE_VERSION and the MCP tools" >&2; exit 1; }
rm -rf "$dir"
mkdir -p "$dir/bin"

# Node itself, from the npm registry's per-platform packages; elsewhere a Node 22+ on PATH.
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) platform=linux-x64 ;;
  Linux-aarch64) platform=linux-arm64 ;;
  *) platform= ;;
esac
if [ -n "$platform" ]; then
  echo "node-tools: installing Node $NODE_VERSION into $dir" >&2
  npm install --prefix "$dir/node" --no-audit --no-fund --ignore-scripts --loglevel=error \
    "node-$platform@$NODE_VERSION" >&2
  ln -s "$dir/node/node_modules/node-$platform/bin/node" "$dir/bin/node"
else
  major="$(node --version 2>/dev/null | sed 's/^v\([0-9]*\).*/\1/')"
  [ "${major:-0}" -ge 22 ] || { echo "node-tools: install Node.js 22 or newer" >&2; exit 1; }
fi

echo "node-tools: installing the pinned MCP tools into $dir" >&2
cp "$here/package.json" "$here/package-lock.json" "$dir/"
PATH="$dir/bin:$PATH" npm ci --prefix "$dir" --no-audit --no-fund --ignore-scripts --loglevel=error >&2
ln -s "$dir/node_modules/.bin/conformance" "$dir/bin/conformance"
ln -s "$dir/node_modules/.bin/inspector" "$dir/bin/inspector"
copy_oauth_scripts
ln -s ../oauth/provider.mjs "$dir/bin/oauth-provider"
ln -s ../oauth/client.mjs "$dir/bin/oauth-client"
touch "$dir/.ready"
echo "$dir"
