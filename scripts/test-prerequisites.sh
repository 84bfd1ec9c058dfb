#!/usr/bin/env bash
# Finds or installs what the test suite needs before `npm test` runs (the package.json "pretest" script):
#   redis-server and redis-cli (the tests start their own servers and Sentinels on free ports),
#   Chromium's headless shell for the example's browser test (CHROMIUM_PATH overrides its path, as in
#   test/example/browser.ts), and python3, make and g++ for compiling better-sqlite3.
# As root it installs what is missing with one apt-get call; otherwise it exits 1 naming the command to run.
# Then, unless given --system-only, it makes sure node_modules is there and better-sqlite3 loads.
# Pure bash and node builtins: it runs before `npm install`, which needs the build tools.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
if ! command -v redis-server >/dev/null 2>&1; then
  missing+=(redis-server) # brings redis-tools, which has redis-cli
elif ! command -v redis-cli >/dev/null 2>&1; then
  missing+=(redis-tools)
fi
[ -x "${CHROMIUM_PATH:-/usr/bin/chromium-headless-shell}" ] || missing+=(chromium-headless-shell)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v g++ >/dev/null 2>&1 || missing+=(g++)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tiered-session tests need: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "tiered-session tests: installing ${missing[*]}" >&2
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

[ "${1:-}" = --system-only ] && exit 0

# node_modules, and better-sqlite3's native module, which is missing when `npm install` ran without the build
# tools (`npm install` alone leaves an unbuilt module as it is, so it is rebuilt).
loads() { node -e "require('better-sqlite3')(':memory:')" >/dev/null 2>&1; }
if ! loads; then
  echo "tiered-session tests: better-sqlite3 does not load, installing and building it" >&2
  [ -d node_modules/better-sqlite3 ] || npm install --no-audit --no-fund
  loads || npm rebuild better-sqlite3
  node -e "require('better-sqlite3')(':memory:')"
fi
