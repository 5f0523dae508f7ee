#!/usr/bin/env bash
# Test setup for the server's end-to-end tests: installs the pinned npm
# packages (package-lock.json) into DIR (under the build directory), once.
#
#   tests/server/npm_install.sh BUILD_DIR/server-e2e
set -euo pipefail
dir="$1"
src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$dir"
if [ -d "$dir/node_modules/openai" ] && cmp -s "$src/package-lock.json" "$dir/package-lock.json"; then
  exit 0
fi
cp "$src/package.json" "$src/package-lock.json" "$dir/"
cd "$dir"
npm ci --no-audit --no-fund --loglevel=error
