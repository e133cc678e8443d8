"""Real OPA runs in a process of its own (policykit/engines/opa_host.py): its
Go runtime gets ``GOGC`` at start, survives policykit's forks, and reports
OPA's errors as the in-process bindings did."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from policykit.engines.rego import EngineUnavailable, load_opa
from tests.conftest import ROOT

try:
    opa = load_opa()
except EngineUnavailable:  # pragma: no cover - CI installs it
    pytest.skip("real OPA is not installed", allow_module_level=True)


def _engine() -> object:
    e = opa.OpaEngine()
    e.add_policy("x.rego", "package x\n\na := input.v + 1\n\nb := data.d.k\n")
    e.add_data({"k": [1, "two"]}, "d")
    return e


def test_values_errors_and_undefined_as_the_bindings_report_them() -> None:
    e = _engine()
    assert e.eval_document("x.a", {"v": 2}) == 3
    assert e.eval_document("x.b") == [1, "two"]
    assert e.eval_query("y := data.x.a", {"v": 1}) == [{"y": 2}]
    assert e.eval_query("data.x.zz == 1", {}) == []
    with pytest.raises(opa.OpaUndefinedError, match=r"data\.x\.zz is undefined"):
        e.eval_document("x.zz", {})
    with pytest.raises(opa.OpaError) as bad:
        e.add_policy("y.rego", "package y\n\na := \n")
    assert "rego_parse_error" in str(bad.value)
    with pytest.raises(opa.OpaError) as surrogate:  # not an escape Go reads as U+FFFD
        e.eval_document("x.a", {"v": "\ud800"})
    assert surrogate.value.code == "invalid_argument"
    with pytest.raises(opa.OpaError) as nul:
        e.add_policy("z\0.rego", "package z\n")
    assert nul.value.code == "invalid_argument"
    # a failed change is not kept: the engine still answers
    assert e.eval_document("x.a", {"v": 40}) == 41
    e.close()
    with pytest.raises(opa.OpaError, match="closed"):
        e.eval_document("x.a", {"v": 1})


def test_one_engine_from_many_threads() -> None:
    e = _engine()
    got: dict[int, object] = {}

    def ask(i: int) -> None:
        got[i] = e.eval_document("x.a", {"v": i})

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == {i: i + 1 for i in range(16)}


GOGC_PROBE = """
import os, sys
from policykit.engines import opa_host
e = opa_host.OpaEngine()
pid = opa_host.host().proc.pid
print(open(f"/proc/{pid}/environ", "rb").read().split(b"\\0").count(sys.argv[1].encode()))
"""


@pytest.mark.parametrize(
    ("env", "want"),
    [
        ({}, "GOGC=" + opa.GOGC),
        ({"GOGC": "150"}, "GOGC=150"),
        ({"GOMEMLIMIT": "1GiB"}, "GOMEMLIMIT=1GiB"),
    ],
)
def test_the_go_runtime_starts_with_gogc_unless_the_user_set_it(
    env: dict[str, str], want: str
) -> None:
    """Go reads GOGC once, from the environment it starts with: the host is
    started with policykit's default, or with the user's own setting."""
    import os

    clean = {k: v for k, v in os.environ.items() if k not in ("GOGC", "GOMEMLIMIT")}

    def count(setting: str) -> str:
        r = subprocess.run(
            [sys.executable, "-c", GOGC_PROBE, setting],
            cwd=ROOT,
            env={**clean, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    assert count(want) == "1", want
    if env:  # the user's setting alone: policykit adds no GOGC beside it
        assert count("GOGC=" + opa.GOGC) == "0"


FORK_PROBE = """
import gc, os, sys
from policykit.engines import opa_host
from policykit.engines.rego import OpaEngine
from policykit.packs import load_packs

engine = OpaEngine(load_packs(["policykit.packs.starter"]), {})  # starts real OPA
pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
       "spec": {"containers": [{"name": "c", "image": "nginx:latest"}]}}
before = sorted(f["id"] for f in engine.raw_batch([pod])[0])
parent_host = opa_host.host().proc
pid = os.fork()
if pid == 0:  # a pool worker: inherited engines are used and collected here
    inherited = sorted(f["id"] for f in engine.raw_batch([pod])[0])
    del engine
    gc.collect()
    fresh = OpaEngine(load_packs(["policykit.packs.starter"]), {})
    again = sorted(f["id"] for f in fresh.raw_batch([pod])[0])
    own = opa_host.host().proc.pid != parent_host.pid
    print("child", inherited == before, again == before, own, flush=True)
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("child exit", os.waitstatus_to_exitcode(status))
print("parent", sorted(f["id"] for f in engine.raw_batch([pod])[0]) == before, before != [])
opa_host._at_exit()  # its input closed: the host ends, though a child had a copy
print("host ended", parent_host.wait(timeout=10) == 0)
"""


def test_a_forked_child_uses_its_own_opa_and_leaves_the_parents_alone() -> None:
    """Go does not survive a fork: a ``check -j``/``verify`` worker forked from
    a process where real OPA ran in-process hung on its first call (the
    garbage collector finalising an inherited engine was enough). With OPA in
    its own process, the child starts its own and builds an inherited engine
    again there; the parent's engine and host are untouched."""
    r = subprocess.run(
        [sys.executable, "-c", FORK_PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert "child True True True" in r.stdout, r.stdout
    assert "child exit 0" in r.stdout
    assert "parent True True" in r.stdout
    assert "host ended True" in r.stdout


DEATH_PROBE = """
import threading, time
from policykit.engines import opa_host
from policykit.engines.rego import EngineUnavailable
e = opa_host.OpaEngine()
N = "numbers.range(1, 4000)"
SLOW = f"slow if {{\\n\\tsome i in {N}\\n\\tsome j in {N}\\n\\ti * j == -1\\n}}\\n"
e.add_policy("x.rego", "package x\\n\\na := input.v * 2\\n\\n" + SLOW)
first = opa_host.host().proc
threading.Timer(0.5, first.kill).start()  # it ends in the middle of a request
t = time.monotonic()
try:
    e.eval_document("x.slow", {})
except EngineUnavailable as exc:
    print("refused", exc.code, exc.message, time.monotonic() - t < 5)
print("again", e.eval_document("x.a", {"v": 21}), opa_host.host().proc is not first)
"""


def test_a_host_that_ends_is_one_clear_error_then_started_again() -> None:
    """The request it ended in fails with PK005 (no hang, no traceback); the
    next starts a host again and builds the engine there from what was added."""
    r = subprocess.run(
        [sys.executable, "-c", DEATH_PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert "refused PK005 real OPA's process ended (exit code -9)" in r.stdout, r.stdout
    assert r.stdout.rstrip().endswith("True\nagain 42 True"), r.stdout
    assert "Traceback" not in r.stderr


def test_the_child_imports_nothing_of_policykit() -> None:
    """It is run by path with -I -S: its start-up is Python's and OPA's only."""
    text = (Path(ROOT) / "policykit" / "engines" / "opa_child.py").read_text()
    assert "policykit" not in "\n".join(
        line for line in text.splitlines() if line.strip().startswith(("import ", "from "))
    )


REAP_PROBE = """
import ctypes, os, random
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans come here
from benchmarks.generate import deployment
from policykit.loader import load_text
from policykit.packs import load_packs
from policykit.verify import verify

rng = random.Random(5)
docs = [d for i in range(600) for d in load_text(deployment(rng, i), f"d{i}.yaml").documents]
report = verify(load_packs(["policykit.packs.starter"]), {}, docs, ("opa",), jobs=2)
import signal
signal.alarm(20)  # an orphan still running would block the wait below
orphans = []
while True:
    try:
        pid, _ = os.waitpid(-1, 0)
    except ChildProcessError:
        break
    orphans.append(pid)
print("compared", report.compared["opa"], "orphans", len(orphans))
"""


def test_verify_workers_stop_their_opa_processes() -> None:
    """Each pool worker starts an OPA process; the workers are let finish, so
    each stops and reaps its own (terminated workers left them to whoever
    reaps orphans, and their CPU time was counted nowhere)."""
    r = subprocess.run(
        [sys.executable, "-c", REAP_PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    assert "compared 600 orphans 0" in r.stdout, r.stdout


INTERRUPT_PROBE = """
import signal, threading, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # pytest-xdist's workers ignore it
from policykit.engines import opa_host
N = "numbers.range(1, 4000)"
e = opa_host.OpaEngine()
SLOW = f"slow if {{\\n\\tsome i in {N}\\n\\tsome j in {N}\\n\\ti * j == -1\\n}}\\n"
e.add_policy("x.rego", "package x\\n\\na := input.v * 2\\n\\n" + SLOW)
first = opa_host.host().proc
main = threading.main_thread().ident
threading.Timer(0.5, signal.pthread_kill, (main, signal.SIGINT)).start()  # Ctrl-C
try:
    e.eval_document("x.slow", {})
except KeyboardInterrupt:
    print("interrupted", first.poll() is not None)
t = time.monotonic()
print("again", e.eval_document("x.a", {"v": 21}), time.monotonic() - t < 5)
"""


def test_an_interrupted_request_ends_its_host() -> None:
    """Ctrl-C between a request and its answer leaves the pipe out of step:
    the host is ended (not left evaluating, not asked again), and the next
    request gets its own answer from a new one."""
    r = subprocess.run(
        [sys.executable, "-c", INTERRUPT_PROBE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "interrupted True" in r.stdout and "again 42 True" in r.stdout, r.stdout


NEVER_PROBE = """
import tempfile
from pathlib import Path
from policykit.engines import opa_host
from policykit.errors import EngineUnavailable
broken = Path(tempfile.mkdtemp())
(broken / "opa_bindings").mkdir()  # a package without its engine: the child cannot start
opa_host.bindings_dir.cache_clear()
opa_host.bindings_dir = lambda: broken
for _ in range(2):
    try:
        opa_host.OpaEngine()
    except EngineUnavailable as exc:
        print("refused", exc.code, exc.message)
"""


def test_a_host_that_cannot_start_is_not_started_again_and_again() -> None:
    r = subprocess.run(
        [sys.executable, "-c", NEVER_PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("refused PK005 cannot start real OPA's process"), r.stdout
    assert lines[1] == "refused PK005 real OPA's process could not start (see above)", r.stdout
    assert r.stderr.count("Traceback") == 1, r.stderr  # the child's, once


def test_opa_errors_cross_a_process_boundary() -> None:
    """An OPA error raised in a ``check -j`` worker is read in the parent as
    itself (it failed to unpickle: the pool reported itself broken)."""
    import pickle

    from policykit.engines.opa_host import OpaError, OpaUndefinedError

    for err in (OpaError("eval_error", "x: conflict"), OpaUndefinedError("no such rule")):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err)
        assert (back.code, back.message, str(back)) == (err.code, err.message, str(err))


def _frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def _text(s: str) -> bytes:
    raw = s.encode()
    return len(raw).to_bytes(4, "big") + raw


def test_the_child_passes_json_through_and_answers_a_bad_request_with_an_error() -> None:
    """The child hands the input's JSON text to OPA and OPA's answer back
    unparsed; a request it cannot read is an error envelope, and the next
    request is still answered."""
    import json

    from policykit.engines.opa_host import CHILD, bindings_dir

    requests = [
        b"new 0\n",
        b"policy 1\n" + _text("x.rego") + _text("package x\n\na := input.v\n"),
        # an input as the parent encodes it: a large integer stays exact
        b"eval 1\n" + _text("x.a") + b'{"v": 123456789012345678901234567890}',
        b"eval 1\n" + _text("x.a") + b"[1,",  # not JSON: OPA says so
        b"eval 9\n" + _text("x.a"),  # no such engine
        b"eval 1\n" + (100).to_bytes(4, "big") + b"x.a",  # a string cut short
        b"policy 1\n" + _text("y\0.rego") + _text("package y\n"),  # a NUL
        b"frobnicate 1\n",
        b"\xff 1\n",  # not UTF-8
        b"eval 1\n" + _text("x.a") + b'{"v": "\\u00e9"}',
    ]
    r = subprocess.run(
        [sys.executable, "-I", "-S", str(CHILD), str(bindings_dir())],
        input=b"".join(_frame(b) for b in requests),
        capture_output=True,
        timeout=60,
    )
    answers, at = [], 0
    while at < len(r.stdout):
        size = int.from_bytes(r.stdout[at : at + 4], "big")
        answers.append(json.loads(r.stdout[at + 4 : at + 4 + size]))
        at += 4 + size
    assert len(answers) == len(requests), r.stderr
    assert answers[0] == {"result": 1} and answers[1]["result"] is True
    assert answers[2]["result"][0]["expressions"][0]["value"] == 123456789012345678901234567890
    codes = [a["error"]["code"] for a in answers[3:9]]
    assert codes == ["invalid_json", "invalid_handle", "invalid_argument", "invalid_argument",
                     "internal", "invalid_argument"], answers  # fmt: skip
    assert answers[9]["result"][0]["expressions"][0]["value"] == "é"
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr


def test_rego_print_output_goes_to_standard_error(capsys: pytest.CaptureFixture[str]) -> None:
    """As ``opa_bindings`` writes a ``print()`` of a policy: location, message."""
    e = opa.OpaEngine()
    e.add_policy("p.rego", 'package p\n\na := 1 if {\n\tprint("seen", input.v)\n}\n')
    assert e.eval_document("p.a", {"v": 7}) == 1
    e.close()
    assert capsys.readouterr().err == "p.rego:4: seen 7\n"


def test_arguments_and_answers_the_parent_cannot_pass_are_errors_and_the_host_goes_on() -> None:
    """A NUL or a lone surrogate in a path or query is refused before it is
    sent (``invalid_argument``, as the bindings refuse it); a closed engine says
    so first; an answer nested deeper than Python's parser goes is an error,
    and the same process answers the next request."""
    from policykit.engines import opa_host

    e = opa.OpaEngine()
    e.add_policy("d.rego", "package d\n\na := json.unmarshal(input.s)\n\nb := input.v\n")
    pid = opa_host.host().proc.pid
    for call in (
        lambda: e.eval_document("d.\ud800"),
        lambda: e.eval_query('x := "\0"'),
        lambda: e.add_data({"k": 1}, "p\ud800"),
    ):
        with pytest.raises(opa.OpaError) as bad:
            call()
        assert bad.value.code == "invalid_argument"
    with pytest.raises(opa.OpaError) as deep:
        e.eval_document("d.a", {"s": "[" * 5000 + "]" * 5000})
    assert deep.value.code == "internal" and "unreadable answer" in deep.value.message
    assert e.eval_document("d.b", {"v": 5}) == 5
    assert opa_host.host().proc.pid == pid  # not ended, not started again
    e.close()
    with pytest.raises(opa.OpaError) as closed:
        e.eval_document("d.\ud800")
    assert closed.value.code == "closed"
