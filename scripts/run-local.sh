#!/usr/bin/env bash
# Installs manifest-guard, starts a local registry on 127.0.0.1:5000 (unless one already
# answers there), and runs the proxy in front of it on 127.0.0.1:5001.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

UPSTREAM="${MANIFEST_GUARD_UPSTREAM:-http://127.0.0.1:5000}"
if ! curl -fsS -o /dev/null "$UPSTREAM/v2/" 2>/dev/null; then
  dir="$PWD/.local-registry"
  mkdir -p "$dir/data"
  cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
YAML
  docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
  registry_pid=$!
  trap 'kill $registry_pid 2>/dev/null' EXIT
  for _ in $(seq 50); do curl -fsS -o /dev/null "$UPSTREAM/v2/" 2>/dev/null && break; sleep 0.1; done
  echo "run-local: started a registry at $UPSTREAM (storage in $dir/data)"
fi
echo "run-local: manifest-guard on http://127.0.0.1:5001 -> $UPSTREAM (Ctrl-C stops both)"
node dist/src/cli.js --upstream "$UPSTREAM" "$@"
