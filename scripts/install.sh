#!/usr/bin/env bash
# The one install step behind bin/berth and the test suite (scripts/test.sh):
# - npm dependencies, whenever package-lock.json differs from the one last
#   installed (a hash kept in node_modules, so a pull that changes the lock
#   file re-installs, whatever the files' times say);
# - Berth's native addon (src/native), whenever its sources are newer;
# - the TypeScript build, whenever a source is newer than it.
# Output goes to stderr so that `bin/berth` keeps stdout for the server.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "berth: $*" >&2; }

# better-sqlite3 and src/native are C/C++ compiled by node-gyp: it needs make,
# a C++ compiler, Python and Node's headers. Without them nothing can start.
toolchain() {
  local missing=()
  command -v make >/dev/null || missing+=(make)
  command -v g++ >/dev/null || command -v c++ >/dev/null || missing+=(g++)
  command -v python3 >/dev/null || missing+=(python3)
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    say "installing the build tools the native parts need: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    flock /tmp/berth-test-apt.lock apt-get update -qq >&2
    flock /tmp/berth-test-apt.lock apt-get install -y -qq -o DPkg::Lock::Timeout=600 make g++ python3 >/dev/null
    return 0
  fi
  say "cannot build: missing ${missing[*]}. Install a C/C++ toolchain and Python"
  say "(Debian/Ubuntu: sudo apt-get install -y make g++ python3), then run this again."
  exit 1
}

headers() {
  local nodedir version
  nodedir="$(npm config get nodedir 2>/dev/null || true)"
  version="$(node -p 'process.version.slice(1)')"
  for dir in "${nodedir:-/nonexistent}/include/node" /usr/include/node "$HOME/.cache/node-gyp/$version/include/node"; do
    [ -f "$dir/node_api.h" ] && return 0
  done
  say "warning: no Node.js headers found (nodedir, /usr/include/node or node-gyp's cache);"
  say "node-gyp will try to download them, which needs access to nodejs.org."
}

lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp=node_modules/.berth-installed-lock
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ] || [ ! -f node_modules/better-sqlite3/build/Release/better_sqlite3.node ]; then
  toolchain
  headers
  say "installing dependencies (npm ci; the SQLite driver compiles once, about two minutes)"
  npm ci --no-audit --no-fund >&2
  echo "$lock_hash" >"$stamp"
fi

# npm ci builds the addon through the package's own install script; after a
# pull that changed only src/native it is rebuilt here.
if [ ! -f build/Release/berth_native.node ] || [ -n "$(find src/native binding.gyp -newer build/Release/berth_native.node -print -quit)" ]; then
  toolchain
  npm run --silent install >&2
fi

# tsc builds incrementally, so a file of its own marks when it last ran.
built=dist/.berth-built
# What npm run build does: the server (tsc), its bundled dependencies
# (dist/vendor, scripts/build-vendor.mjs), then the web UI (src/web/app → dist/web, docs/web.md).
if [ ! -f "$built" ] || [ ! -f dist/src/cli/main.js ] || [ ! -f dist/vendor/kysely.cjs ] || [ ! -f dist/vendor/yaml.cjs ] || [ -n "$(find src test scripts tsconfig.json package-lock.json -newer "$built" \( -name '*.ts' -o -name '*.tsx' -o -name '*.css' -o -name '*.json' -o -name 'build-web.mjs' -o -name 'build-vendor.mjs' \) -print -quit)" ]; then
  npx tsc -p tsconfig.json >&2
  npm run --silent build:vendor >&2
  npm run --silent build:web >&2
  touch "$built"
fi
