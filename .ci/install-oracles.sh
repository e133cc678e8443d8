#!/usr/bin/env bash
# Install the real engines the tests use as oracles:
#  * OPA v1.20.2 (embedded in the opa-golib-python-bindings wheel): .ci/install-opa.sh
#  * ajv 8 (what Backstage's scaffolder forms validate JSON Schema with), on Node.js,
#    into tests/js/node_modules from the committed package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-opa.sh
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq nodejs npm >/dev/null
  fi
fi
command -v node >/dev/null || { echo "install-oracles: Node.js is required for the ajv oracle" >&2; exit 1; }
if [ ! -d tests/js/node_modules/ajv ]; then
  npm ci --prefix tests/js --no-audit --no-fund --silent
fi
(cd tests/js && node --input-type=module -e 'await import("ajv/dist/2020.js"); console.log("ajv ready")')
