#!/usr/bin/env bash
# The stale-list story with the real docker CLI, through manifest-guard and then straight to
# the registry: what docker prints in each case. Starts its own registry and proxy (proxy and
# admin listener both) on free loopback ports, so it runs beside a proxy that already holds
# the default ones (scripts/run-local.sh: 5001 and 9464), and stops them at the end. When
# either does not start, it stops with that process's own error. MANIFEST_GUARD_* settings in
# the environment apply to its proxy as to any. Needs `npm run build` (npm run demo does it).
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
# Three ports at once, all held until all are known, so no two are the same.
read -r REG_PORT PROXY_PORT ADMIN_PORT < <(node -e '
  const net = require("net"); const held = []
  const next = () => { const s = net.createServer(); s.listen(0, "127.0.0.1", () => { held.push(s); held.length < 3 ? next() : (console.log(held.map((h) => h.address().port).join(" ")), held.forEach((h) => h.close())) }) }
  next()')
cleanup() { kill "${proxy_pid:-}" "${registry_pid:-}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# Waits until URL answers; if the process PID exits (or time runs out) first, prints its log
# and stops the demo: the reason is in there, not in what a client would print next.
await_up() {
  local name=$1 pid=$2 url=$3 log=$4
  for _ in $(seq 300); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" && code=0 || code=$?
      echo "demo: $name did not start (exit $code):" >&2
      cat "$log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "demo: $name did not answer $url within 30 s:" >&2
  cat "$log" >&2
  exit 1
}

cat >"$work/registry.yml" <<YAML
version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $work/data }, delete: { enabled: true } }
http: { addr: 127.0.0.1:$REG_PORT }
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 & registry_pid=$!
await_up "the registry" "$registry_pid" "http://127.0.0.1:$REG_PORT/v2/" "$work/registry.log"
node dist/src/cli.js --upstream "http://127.0.0.1:$REG_PORT" --listen "127.0.0.1:$PROXY_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" --log-level warn >"$work/proxy.log" 2>&1 & proxy_pid=$!
await_up manifest-guard "$proxy_pid" "http://127.0.0.1:$PROXY_PORT/readyz" "$work/proxy.log"

export DOCKER_CONFIG="$work/docker"
mkdir -p "$DOCKER_CONFIG"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
image() { node dist/test/demo/make-image.js "$@"; }

story() {
  local host=$1 repo=$2
  read -r amd_v1 _ < <(image amd64 "v1-$repo")
  read -r arm_v1 _ < <(image arm64 "v1-$repo")
  read -r amd_v2 _ < <(image amd64 "v2-$repo")
  say "skopeo copy ... $host/$repo:1.0-amd64 and :1.0-arm64      # CI pushes the platform images"
  skopeo copy -q --dest-tls-verify=false "$amd_v1" "docker://$host/$repo:1.0-amd64"
  skopeo copy -q --dest-tls-verify=false "$arm_v1" "docker://$host/$repo:1.0-arm64"
  say "docker manifest create --insecure $host/$repo:1.0 $host/$repo:1.0-amd64 $host/$repo:1.0-arm64"
  docker manifest create --insecure "$host/$repo:1.0" "$host/$repo:1.0-amd64" "$host/$repo:1.0-arm64"
  say "docker manifest push --insecure $host/$repo:1.0"
  docker manifest push --insecure "$host/$repo:1.0"
  say "skopeo copy ... $host/$repo:1.0-amd64      # amd64 is rebuilt and re-pushed"
  skopeo copy -q --dest-tls-verify=false "$amd_v2" "docker://$host/$repo:1.0-amd64"
  say "docker manifest create --insecure --amend $host/$repo:1.0 $host/$repo:1.0-amd64 $host/$repo:1.0-arm64"
  docker manifest create --insecure --amend "$host/$repo:1.0" "$host/$repo:1.0-amd64" "$host/$repo:1.0-arm64"
  say "docker manifest push --insecure $host/$repo:1.0"
  if docker manifest push --insecure "$host/$repo:1.0"; then
    echo "(exit 0: the list was accepted)"
  else
    echo "(exit $?: the push was refused)"
  fi
}

echo "== Through manifest-guard (127.0.0.1:$PROXY_PORT) =="
story "127.0.0.1:$PROXY_PORT" demo/app
echo
echo "== Straight to the registry (127.0.0.1:$REG_PORT) =="
story "127.0.0.1:$REG_PORT" demo/direct
amd_now=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' -o /dev/null -D - "http://127.0.0.1:$REG_PORT/v2/demo/direct/manifests/1.0-amd64" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
listed=$(curl -fsS -H 'Accept: application/vnd.oci.image.index.v1+json' "http://127.0.0.1:$REG_PORT/v2/demo/direct/manifests/1.0" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).manifests.find(m=>m.platform.architecture==="amd64").digest))')
echo
echo "The registry took it: demo/direct:1.0 lists amd64 as $listed"
echo "but demo/direct:1.0-amd64 is now                   $amd_now  (the list ships the old build)"
