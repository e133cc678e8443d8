"""An object an engine cannot evaluate is that object's error entry, never the
end of the run (one bad input never loses the report), and a built-in kind
reaches the CEL targets as the API server gives it to admission: with no field
written as null (policykit.k8s.kinds.as_admitted).

Before: a Deployment with an empty ``resources:``, ``securityContext:`` or
``labels:`` (Helm output, a commented-out block) ended ``check --engine cel``
and ``verify`` with one PK006 line, exit 2 and no report; a field of the wrong
type (``replicas: true``) did the same, or ended ``verify`` with a PK402 that
blamed a missing CEL function."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from policykit import cores
from policykit.cli.main import cli
from policykit.k8s.kinds import as_admitted

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: shop
  labels:
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
        - name: web
          image: nginx:1.25
          resources:
          securityContext:
"""

PACK = """\
from policykit.dsl import PackBuilder, select

replicas = PackBuilder("replicas", "0.1.0")


@replicas.rule("REP-001", title="Two replicas at least", select=select(kinds=["Deployment"]),
               message="{metadata.name} runs {spec.replicas} replica(s)")
def few(o):
    return o.spec.replicas.default(1) < 2
"""


def _run(tmp_path: Path, *args: str) -> tuple[int, dict[str, object], str]:
    out = tmp_path / "report.json"
    r = CliRunner().invoke(cli, [*args, "--format", "json", "-o", str(out)])
    return r.exit_code, json.loads(out.read_text()), r.stderr


def test_null_fields_of_a_built_in_kind_are_compared_as_admitted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verify's admission harness reads a built-in kind as the API server gives
    it (no null field): the CEL targets agree with the reference; check
    --engine cel, which reads the manifest as written, gives an error entry
    for that object, never the end of the run."""
    monkeypatch.chdir(tmp_path)
    Path("d.yaml").write_text(DEPLOYMENT.format(name="web", replicas="null"))
    code, report, _ = _run(tmp_path, "verify", "d.yaml")
    assert code == 0 and report["mismatches"] == [], report
    assert report["compared"]["vap"] == 1 and report["compared"]["kyverno"] == 1
    code, report, _ = _run(tmp_path, "check", "d.yaml", "--engine", "native")
    assert code == 1 and {f["rule"] for f in report["findings"]} >= {"K8S-001", "K8S-004"}
    code, report, stderr = _run(tmp_path, "check", "d.yaml", "--engine", "cel")
    assert code == 2 and [e["code"] for e in report["errors"]] == ["PK006"], stderr


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_object_cel_cannot_evaluate_is_its_error_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    """``replicas: true`` errs in CEL (double(bool)): that file is one PK006
    entry at its line, naming the object; every other file is still checked,
    the JSON report is written (exit 2), serial and on a pool alike."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cores, "MIN_FILES", 1)
    Path("pack.py").write_text(PACK)
    Path("a-bad.yaml").write_text(DEPLOYMENT.format(name="bad", replicas="true"))
    Path("b-one.yaml").write_text(DEPLOYMENT.format(name="one", replicas=1))
    Path("c-two.yaml").write_text(DEPLOYMENT.format(name="two", replicas=2))
    args = ("check", ".", "--pack", "pack.py", "--engine", "cel", "--jobs", str(jobs))
    code, report, stderr = _run(tmp_path, *args)
    assert code == 2, stderr
    (err,) = report["errors"]
    assert (err["file"], err["line"], err["code"]) == ("a-bad.yaml", 1, "PK006")
    assert err["message"].startswith("Deployment/shop/bad: CEL evaluation error")
    assert [(f["rule"], f["file"]) for f in report["findings"]] == [("REP-001", "b-one.yaml")]
    assert "a-bad.yaml:1: PK006 Deployment/shop/bad: " in stderr


def test_verify_reports_a_cel_error_as_that_objects_disagreement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API server under failurePolicy Fail denies with the expression's
    error: a disagreement on that object, for both CEL targets; the run goes on."""
    monkeypatch.chdir(tmp_path)
    Path("pack.py").write_text(PACK)
    Path("a-bad.yaml").write_text(DEPLOYMENT.format(name="bad", replicas="true"))
    Path("b-one.yaml").write_text(DEPLOYMENT.format(name="one", replicas=1))
    code, report, stderr = _run(tmp_path, "verify", ".", "--pack", "pack.py")
    assert code == 1, stderr
    assert report["compared"]["vap"] == 2 and report["compared"]["kyverno"] == 2
    bad = {(m["target"], m["file"]) for m in report["mismatches"]}
    assert bad == {("vap", "a-bad.yaml"), ("kyverno", "a-bad.yaml")}, report["mismatches"]
    for m in report["mismatches"]:
        assert m["expected"] is None and m["got"].startswith("error: "), m
        assert "double(bool)" in m["got"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(spec=JSON, meta=st.dictionaries(st.text(max_size=3), JSON, max_size=3))
def test_as_admitted_reads_the_null_fields_of_built_in_kinds_as_decoded(
    spec: object, meta: dict[str, object]
) -> None:
    def nulls(v: object) -> bool:
        if isinstance(v, dict):
            return any(x is None or nulls(x) for x in v.values())
        return isinstance(v, list) and any(nulls(x) for x in v)

    structs = {"metadata", "spec", "template", "jobTemplate", "strategy", "updateStrategy"}

    def same_but_nulls(a: object, b: object) -> bool:
        """``b`` is ``a`` with each null dropped, or ``{}`` for a struct field
        (the zero value the API server decodes it to)."""
        if isinstance(a, dict):
            kept = [k for k, x in a.items() if x is not None or k in structs | {"resources"}]
            return (
                isinstance(b, dict)
                and set(b) <= set(kept)
                and all(k in b for k, x in a.items() if x is not None or k in structs)
                and all(b[k] == {} if a[k] is None else same_but_nulls(a[k], b[k]) for k in b)
            )
        if isinstance(a, list):
            return isinstance(b, list) and len(a) == len(b) and all(map(same_but_nulls, a, b))
        return a == b

    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}
    before = json.dumps(obj)
    got = as_admitted(obj)
    assert json.dumps(obj) == before  # never changed in place
    assert not nulls(got) and same_but_nulls(obj, got)
    assert (got is obj) is not nulls(obj)
    # custom resources and Backstage entities keep what they hold
    for api, kind in (
        ("acme.io/v1", "Widget"),
        ("backstage.io/v1alpha1", "Component"),
        ("v1", "Deployment"),
    ):
        other = {**obj, "apiVersion": api, "kind": kind}
        assert as_admitted(other) is other


# the Deployment above with a string regopy would read without its quotes
QUOTED = DEPLOYMENT.replace("{replicas}", "1").replace(
    "  labels:\n", "  annotations: {{note: '\"quoted\"'}}\n"
)


@pytest.mark.parametrize("jobs", [1, 2])
def test_verify_leaves_out_what_regopy_cannot_read_and_compares_the_rest(
    tmp_path: Path, jobs: int
) -> None:
    """A string regopy would read without its quotes (PK010) ended verify with
    exit 2 and no report; that object is now left out of the regopy targets,
    named in leftOut, and every other comparison is made."""
    from policykit.loader import load_paths
    from policykit.packs import load_packs
    from policykit.verify import verify

    (tmp_path / "a.yaml").write_text(QUOTED.format(name="quoted"))
    (tmp_path / "b.yaml").write_text(DEPLOYMENT.format(name="plain", replicas=1))
    docs = load_paths([str(tmp_path)]).documents
    packs = load_packs(["policykit.packs.starter"])
    targets = ("rego", "gatekeeper", "vap", "jsonschema")
    report = verify(packs, {}, docs, targets, jobs=jobs)
    assert report.mismatches == []
    assert report.compared["rego"] == 1 and report.compared["gatekeeper"] == 1
    assert report.compared["vap"] == 2 and report.compared["jsonschema"] == 2
    left = [x for x in report.left_out if "PK010" in x]
    assert [x.split(":", 1)[0] for x in left] == ["rego", "gatekeeper (regopy)"], left
    assert all(f"{tmp_path / 'a.yaml'}:1: PK010 Deployment/shop/quoted" in x for x in left), left


def test_left_out_objects_reach_every_verify_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JUnit (skipped cases), SARIF (notifications), GitHub (warnings) and the
    table (a row of 0) say what was not compared; they said nothing."""
    monkeypatch.chdir(tmp_path)
    Path("a.yaml").write_text(QUOTED.format(name="quoted"))
    args = ["verify", "a.yaml", "--target", "rego"]
    table = CliRunner().invoke(cli, args)
    assert table.exit_code == 0, table.output
    assert "rego             0 objects  nothing compared" in table.stdout
    junit = CliRunner().invoke(cli, [*args, "--format", "junit"]).stdout
    assert '<testsuite name="left out"' in junit and "<skipped message=" in junit
    sarif = json.loads(CliRunner().invoke(cli, [*args, "--format", "sarif"]).stdout)
    (note,) = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert "Deployment/shop/quoted" in note["message"]["text"]
    github = CliRunner().invoke(cli, [*args, "--format", "github"]).stdout
    assert github.startswith("::warning title=policykit verify%3A an object left out::rego: ")


def test_an_inventory_object_regopy_cannot_read_is_its_error_not_the_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finops pack's cross-object rules give regopy every object as its
    inventory: a quote-wrapped string in one ended check (exit 2, no report)
    and, in verify, was blamed on every object. Now: that object's error entry
    (check) or one note (verify); the others are checked."""
    monkeypatch.chdir(tmp_path)
    Path("a.yaml").write_text(QUOTED.format(name="quoted"))
    Path("b.yaml").write_text(QUOTED.format(name="plain").replace("'\"quoted\"'", "fine"))
    code, report, stderr = _run(
        tmp_path, "check", ".", "--pack", "policykit.packs.finops", "--engine", "rego"
    )
    assert code == 2, stderr
    (err,) = report["errors"]
    assert (err["file"], err["line"], err["code"]) == ("a.yaml", 1, "PK010")
    assert "Deployment/shop/quoted" in err["message"] and "inventory" in err["message"]
    native = _run(tmp_path, "check", "b.yaml", "--pack", "policykit.packs.finops")[1]
    assert {f["rule"] for f in report["findings"]} == {f["rule"] for f in native["findings"]}
    assert all(f["file"] == "b.yaml" for f in report["findings"])
    args = ("verify", ".", "--pack", "policykit.packs.finops", "--target", "gatekeeper")
    code, report, stderr = _run(tmp_path, *args)
    assert code == 0, stderr
    notes = [x for x in report["leftOut"] if "PK010" in x]
    assert sum("in the inventory" in x for x in notes) == 1, notes


CHECKS_ABSENCE = """\
from policykit.dsl import PackBuilder, select
from policykit.dsl.k8s import containers

bare = PackBuilder("bare", "0.1.0")


@bare.rule("BARE-001", title="t", select=select(kinds=["Deployment"]), message="{metadata.name}")
def no_resources(o):
    return containers(o).any(lambda c: c.resources.absent())
"""


def test_a_null_struct_is_the_empty_object_admission_sees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A container's `resources:` left empty is `{}` at the API server (a Go
    struct), which `has()` tells from absent: the reference's "absent" rule
    fires in CI, the VAP admits it. Dropping the null hid that disagreement;
    verify reports it."""
    monkeypatch.chdir(tmp_path)
    Path("pack.py").write_text(CHECKS_ABSENCE)
    Path("d.yaml").write_text(DEPLOYMENT.format(name="web", replicas=2))
    code, report, stderr = _run(tmp_path, "verify", "d.yaml", "--pack", "pack.py")
    assert code == 1, stderr
    assert {(m["target"], m["rule"], m["expected"], m["got"]) for m in report["mismatches"]} == {
        ("vap", "BARE-001", "web", None),
        ("kyverno", "BARE-001", "web", None),
    }


LONG = """\
from policykit.dsl import PackBuilder, select
from policykit.dsl.k8s import containers

long = PackBuilder("long", "0.1.0")
D = select(kinds=["Deployment"])


@long.rule("LONG-001", title="t", select=D, message="note: {metadata.annotations.note}")
def noted(o):
    return o.metadata.annotations.note.exists()


@long.rule("LONG-002", title="t", select=D, each=containers, message="image {c.image} of {c.name}")
def images(o, c):
    return c.image.length() > 10
"""


def test_a_message_the_reference_caps_agrees_with_the_full_admission_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reference caps a message at 1000 characters (head … tail); the CEL
    targets give it in full, so verify reported a disagreement on every long
    message (a parameter list, a long annotation). A difference in what the
    reference kept (the first and last characters) is still one."""
    monkeypatch.chdir(tmp_path)
    Path("pack.py").write_text(LONG)
    note = "n" * 3000
    images = ["a" * 1500 + "x", "short-image-name", "b" * 1200]
    containers = "".join(f"\n        - {{name: c{i}, image: {im}}}" for i, im in enumerate(images))
    Path("d.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\n"
        f"metadata: {{name: web, namespace: shop, annotations: {{note: {note}}}}}\n"
        "spec:\n  template:\n    spec:\n      containers:" + containers + "\n"
    )
    code, report, _ = _run(tmp_path, "verify", "d.yaml", "--pack", "pack.py")
    assert code == 0 and report["mismatches"] == [], report["mismatches"]
    assert report["compared"]["vap"] == 1 and report["compared"]["kyverno"] == 1

    from policykit.verify_cel import capped_alike

    full = "note: " + note
    capped = full[:500] + "\u2026" + full[-499:]
    assert capped_alike([capped], full)
    assert not capped_alike([capped], "X" + full[1:])  # the head differs
    assert not capped_alike([capped], full[:-1] + "z")  # the tail differs
    assert not capped_alike(["short"], "short!")
