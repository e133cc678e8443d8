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


FORK_PROBE = """
import gc, os, sys
from policykit.engines.rego import OpaEngine
from policykit.packs import load_packs

engine = OpaEngine(load_packs(["policykit.packs.starter"]), {})  # starts Go
assert engine.evaluate_all([]) == []
pid = os.fork()
if pid == 0:  # a pool worker: the inherited engine is collected here
    del engine
    gc.collect()
    try:
        OpaEngine(load_packs(["policykit.packs.starter"]), {}).evaluate_all([])
    except Exception as exc:
        print("refused:", type(exc).__name__, exc, flush=True)
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("child exit", os.waitstatus_to_exitcode(status))
"""


def test_a_child_forked_after_opa_started_neither_hangs_nor_calls_it() -> None:
    """Real OPA's Go runtime does not survive a fork: a ``check -j``/``verify``
    worker whose garbage collector finalised an engine the parent had made
    (``OpaEngine.__del__`` -> a call into Go) spun forever, which hung the
    suite under pytest-xdist. The child forgets inherited engines and refuses
    to call OPA, in one line rather than a hang."""
    r = subprocess.run(
        [sys.executable, "-c", FORK_PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert "child exit 0" in r.stdout
    assert "refused: " in r.stdout and "forked after it started" in r.stdout, r.stdout
