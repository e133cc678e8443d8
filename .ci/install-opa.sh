#!/usr/bin/env bash
# Install real OPA (v1.20.2, embedded in the opa-golib-python-bindings wheel) for
# the oracle tests. The wheel declares Python 3.14 but works on 3.11 unpacked;
# it is placed on sys.path through a .pth file in the active environment.
set -euo pipefail
dest="${POLICYKIT_OPA_DIR:-$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/_policykit_opa}"
if python -c "import sys; sys.path.insert(0, '$dest'); import opa_bindings" 2>/dev/null; then
  exit 0
fi
tmp=$(mktemp -d)
python -m pip download --quiet --no-deps --python-version 3.14 --only-binary=:all: \
  opa-golib-python-bindings==0.4.4 -d "$tmp"
mkdir -p "$dest"
python - "$tmp" "$dest" <<'PY'
import glob, sys, zipfile
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
zipfile.ZipFile(whl).extractall(sys.argv[2])
PY
purelib=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$dest" > "$purelib/_policykit_opa.pth"
rm -rf "$tmp"
python -c "import opa_bindings; print('OPA bindings ready:', opa_bindings.__file__)"
