#!/usr/bin/env bash
# Installs manifest-guard (what running it needs, not the tests' tools), starts a local
# registry at MANIFEST_GUARD_UPSTREAM (default http://127.0.0.1:5000) unless one already answers
# there, and runs the proxy in front of it on 127.0.0.1:5001.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --run-only

UPSTREAM="${MANIFEST_GUARD_UPSTREAM:-http://127.0.0.1:5000}"
if ! curl -fsS -o /dev/null "$UPSTREAM/v2/" 2>/dev/null; then
  # The registry started here listens where the upstream says; only a plain-HTTP loopback
  # address can be started on this machine.
  addr="${UPSTREAM#http://}"
  addr="${addr%/}"
  case "$addr" in
    127.*:[0-9]*|localhost:[0-9]*) ;;
    *) echo "run-local: nothing answers at $UPSTREAM, and a registry can be started here only at http://127.x.x.x:PORT or http://localhost:PORT" >&2; exit 2 ;;
  esac
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
  addr: $addr
YAML
  docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
  registry_pid=$!
  trap 'kill $registry_pid 2>/dev/null' EXIT
  for _ in $(seq 50); do curl -fsS -o /dev/null "$UPSTREAM/v2/" 2>/dev/null && break; sleep 0.1; done
  echo "run-local: started a registry at $UPSTREAM (storage in $dir/data)"
fi
echo "run-local: manifest-guard on http://127.0.0.1:5001 -> $UPSTREAM (Ctrl-C stops both)"
node dist/src/cli.js --upstream "$UPSTREAM" "$@"
