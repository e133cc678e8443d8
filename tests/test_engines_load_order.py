"""regopy loaded before cel-cpp corrupts cel-cpp's heap ("free(): invalid
pointer"). policykit loads cel-cpp first (policykit/engines/__init__.py), and
if a program loaded regopy before policykit, the CEL engine refuses (PK005)
rather than crash."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

KINDS = str(
    [
        "Pod",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ReplicationController",
        "Job",
        "CronJob",
    ]
)
PROBE = f"""
import sys
import {{first}}
from policykit.engines.cel import program
from policykit.errors import PolicykitError
try:
    ok = program("object.kind in {KINDS}").eval({{{{"object": {{{{"kind": "Job"}}}}}}}})
except PolicykitError as e:
    print(e.code)
    sys.exit(0)
assert ok is True
import regopy
out = str(regopy.Interpreter().query('x := regex.match("^a", "abc")'))
assert '"x":true' in out, out
print("ok")
"""


def _run(first: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE.format(first=first)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_policykit_first_then_regopy_is_safe() -> None:
    r = _run("policykit.engines.rego")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-500:]


def test_regopy_first_is_refused_not_a_crash() -> None:
    r = _run("regopy, policykit.engines")
    assert r.returncode == 0 and r.stdout.strip() == "PK005", (r.returncode, r.stderr[-500:])
