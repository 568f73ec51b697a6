#!/usr/bin/env bash
# The stale-list story with the real docker CLI, through manifest-guard and then straight to
# the registry: what docker prints in each case. Starts its own registry and proxy on free
# loopback ports (the proxy's admin listener too, so it runs beside a proxy already started
# by scripts/run-local.sh) and stops them at the end. Needs `npm run build` (npm run demo does it).
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
REG_PORT=$(free_port)
PROXY_PORT=$(free_port)
ADMIN_PORT=$(free_port)
cleanup() { kill "${proxy_pid:-}" "${registry_pid:-}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cat >"$work/registry.yml" <<YAML
version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $work/data }, delete: { enabled: true } }
http: { addr: 127.0.0.1:$REG_PORT }
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 & registry_pid=$!
node dist/src/cli.js --upstream "http://127.0.0.1:$REG_PORT" --listen "127.0.0.1:$PROXY_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" --log-level warn >"$work/proxy.log" 2>&1 & proxy_pid=$!
ready=0
for _ in $(seq 100); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$PROXY_PORT/readyz" 2>/dev/null; then ready=1; break; fi
  # The proxy gave up (a bad setting, a port taken): say so in its own words.
  kill -0 "$proxy_pid" 2>/dev/null || break
  sleep 0.1
done
if [ "$ready" != 1 ]; then
  echo "demo: manifest-guard did not start:" >&2
  cat "$work/proxy.log" >&2
  exit 1
fi

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
