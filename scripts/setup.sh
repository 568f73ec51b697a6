#!/usr/bin/env bash
# Installs what manifest-guard needs on Debian/Ubuntu, then builds it; with --run-only, only
# what running it needs (the registry run-local.sh starts, curl, the Node packages), else the
# tests' tools too (scripts/test-tools.sh). Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

run_only=false
[ "${1:-}" = "--run-only" ] && run_only=true

need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v curl >/dev/null || need+=(curl)
if [ "${#need[@]}" -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
$run_only || bash scripts/test-tools.sh

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "setup: manifest-guard needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

npm ci --no-audit --no-fund --loglevel=error
# tap's Test class is built for the plugins .taprc names (the TypeScript loader left out); the
# first test run would do it otherwise.
$run_only || npx tap build >/dev/null
npm run build --silent
