#!/usr/bin/env bash
# Installs the tools the tests drive, on Debian/Ubuntu: the real registry and clients, Redis,
# Go, a browser, a docker engine. Quick when they are there (it only looks), so `npm test` runs
# it first and works on a machine that has only run scripts/run-local.sh.
set -euo pipefail

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
# Redis Sentinel, for the ledger's failover test (test/slow/redis-sentinel.test.ts).
command -v redis-sentinel >/dev/null || need+=(redis-sentinel)
# promtool (Debian's prometheus package) checks the chart's alert rules (helm-chart.test.ts).
command -v promtool >/dev/null || need+=(prometheus)
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
# Debian's docker engine (docker.io 20.10: /usr/sbin/dockerd and its CLI /usr/bin/docker): the
# tests start their own dockerd (test/helpers/dockerd.ts) for `docker push`/`pull` and the image
# test. It is installed even where another docker CLI is on PATH (that one, if any, still serves
# the daemon-free `docker manifest` tests). mmdebstrap makes the Debian root filesystem of the
# image test's stand-in base image (scripts/image-base.sh).
engine=()
[ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ] || engine+=(docker.io)
command -v mmdebstrap >/dev/null || engine+=(mmdebstrap)
if [ "${#engine[@]}" -gt 0 ]; then
  echo "setup: installing ${engine[*]}"
  $SUDO apt-get update -qq
  # policy-rc.d may refuse to start the packaged service (no systemd here): the tests start their own.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${engine[@]}" >/dev/null
fi

