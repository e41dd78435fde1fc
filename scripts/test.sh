#!/usr/bin/env bash
# The whole test suite, from a clean clone: installs what the tests need
# (Debian packages when missing, npm dependencies), builds, runs every test.
# Usage: npm test [-- substring-filter ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need=()
command -v skopeo >/dev/null || need+=(skopeo)
command -v umoci >/dev/null || need+=(umoci)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v openssl >/dev/null || need+=(openssl)
command -v dockerd >/dev/null && [ -x /usr/bin/docker ] || need+=(docker.io)
command -v podman >/dev/null || need+=(podman)
command -v containerd >/dev/null && command -v ctr >/dev/null || need+=(containerd)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
# OpenStack Swift with s3api: the S3 engine of the object-store tests (test/support/swift.ts).
command -v swift-proxy-server >/dev/null && command -v swift-object-server >/dev/null || need+=(swift swift-proxy swift-account swift-container swift-object)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "test: installing Debian packages: ${need[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then echo "test: need root to apt-get install ${need[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  flock /tmp/berth-test-apt.lock apt-get update -qq
  flock /tmp/berth-test-apt.lock apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${need[@]}" >/dev/null
fi

# npm dependencies, the native addon and the build: the same step bin/berth
# runs (scripts/install.sh). The tests run on a build made from scratch.
rm -rf dist
scripts/install.sh
node scripts/run-tests.mjs "$@"
