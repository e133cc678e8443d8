#!/usr/bin/env bash
# Install the real engines and servers the tests use:
#  * OPA v1.20.2 (embedded in the opa-golib-python-bindings wheel): .ci/install-opa.sh
#  * ajv 8 (what Backstage's scaffolder forms validate JSON Schema with), on Node.js,
#    into tests/js/node_modules from the committed package-lock.json;
#  * an OCI registry (Debian's docker-registry: the CNCF distribution server).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-opa.sh
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
apt_packages=()
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_packages+=(nodejs npm)
fi
command -v docker-registry >/dev/null 2>&1 || apt_packages+=(docker-registry)
if [ ${#apt_packages[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
  # the package's service is not needed (tests start their own on loopback)
  $sudo systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi
command -v docker-registry >/dev/null || { echo "install-oracles: docker-registry is required" >&2; exit 1; }
command -v node >/dev/null || { echo "install-oracles: Node.js is required for the ajv oracle" >&2; exit 1; }
if [ ! -d tests/js/node_modules/ajv ]; then
  npm ci --prefix tests/js --no-audit --no-fund --silent
fi
(cd tests/js && node --input-type=module -e 'await import("ajv/dist/2020.js"); console.log("ajv ready")')
