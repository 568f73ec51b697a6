#!/usr/bin/env bash
# Installs what manifest-guard and its tests need on Debian/Ubuntu, then builds it.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v buildah >/dev/null || need+=(buildah)
command -v podman >/dev/null || need+=(podman)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v curl >/dev/null || need+=(curl)
command -v unzip >/dev/null || need+=(unzip)
command -v redis-server >/dev/null || need+=(redis-server)
command -v openssl >/dev/null || need+=(openssl)
# Go 1.19 (Debian 12), the Go distribution 2.8 is built with: a test compares manifest-guard's
# reading of bodies with encoding/json's own.
command -v go >/dev/null || need+=(golang-go)
# A real headless browser for the admin decisions page test (driven by playwright-core).
command -v chromium >/dev/null || need+=(chromium)
if [ "${#need[@]}" -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The docker CLI's `manifest` commands are used by the tests; no daemon is needed. Debian
# ships the CLI only inside docker.io, whose daemon may not start in a container: a failure
# here is reported, and the tests that need the CLI say what is missing.
if ! command -v docker >/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends docker.io >/dev/null ||
    echo "setup: could not install docker.io; the tests that drive the docker CLI will fail and say so" >&2
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "setup: manifest-guard needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
