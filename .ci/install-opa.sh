#!/usr/bin/env bash
# Install real OPA (v1.20.2, embedded in the opa-golib-python-bindings wheel) for
# the oracle tests, into the active environment (policykit must be installed):
# see policykit/engines/opa_install.py.
set -euo pipefail
python -m policykit.engines.opa_install
