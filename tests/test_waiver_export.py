"""Waivers travel to the admission targets where they can be expressed exactly
(Kyverno PolicyException, Gatekeeper excludedNamespaces, VAP binding
exclusions), and each target then skips exactly the waived findings — proved
through the local harnesses by ``verify``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from policykit.cli.main import cli
from policykit.engines.native import NativeEngine
from policykit.targets.rego.bundle import Bundle
from policykit.verify import verify
from policykit.waivers import Waiver
from tests.test_admission_targets import CRDS, _crd_schema, _examples

DAY = dt.date(2026, 11, 23)


def _w(rule: str, **match: str) -> Waiver:
    return Waiver(rule, "accepted risk", "team@acme.example", DAY + dt.timedelta(days=30), match)


WAIVERS = [
    _w("K8S-002", namespace="prod-search"),  # everywhere (exact namespace)
    _w("ACME-002", kind="Deployment", name="search-indexer"),  # kyverno + vap, not gatekeeper
    _w("K8S-003", namespace="bat*"),  # kyverno + gatekeeper (prefix), not vap
    _w("K8S-001", file="examples/kubernetes/*.yaml"),  # nowhere at admission
]


def test_each_target_skips_exactly_what_it_carries() -> None:
    packs, params, docs = _examples()
    plain = verify(packs, params, docs, ("gatekeeper", "vap", "kyverno"))
    assert plain.ok
    report = verify(packs, params, docs, ("gatekeeper", "vap", "kyverno"), waivers=WAIVERS)
    assert report.ok, report.mismatches
    # the waivers do take effect: fewer findings in each target than without them
    native = NativeEngine(packs, params).evaluate_all(docs)
    waived = {f.rule for f in native if any(w.matches(f) for w in WAIVERS[:3])}
    assert {"K8S-002", "ACME-002", "K8S-003"} <= waived


def test_a_wrong_export_is_caught() -> None:
    """A harness that ignored the exceptions would disagree: verify is sharp."""
    packs, params, docs = _examples()
    from policykit.k8s import validating as admission

    real = admission.evaluate_kyverno

    def ignoring(policy, obj, **kw):  # type: ignore[no-untyped-def]
        kw.pop("exceptions", None)
        return real(policy, obj, **kw)

    admission.evaluate_kyverno = ignoring  # type: ignore[assignment]
    try:
        report = verify(packs, params, docs, ("kyverno",), waivers=WAIVERS)
    finally:
        admission.evaluate_kyverno = real  # type: ignore[assignment]
    assert not report.ok and {m.rule for m in report.mismatches} >= {"K8S-002", "ACME-002"}


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_build_writes_exceptions_and_exclusions(tmp_path: Path, version: str) -> None:
    wf = tmp_path / "policykit.waivers.yaml"
    wf.write_text(
        yaml.safe_dump(
            {
                "waivers": [
                    {
                        "rule": w.rule,
                        "match": w.match,
                        "reason": w.reason,
                        "owner": w.owner,
                        "expires": w.expires.isoformat(),
                    }
                    for w in WAIVERS
                ]
            }
        )
    )
    out = tmp_path / "dist"
    r = CliRunner().invoke(
        cli,
        ["build", "--target", "all", "--out", str(out), "--waivers", str(wf), "--today",
         DAY.isoformat(), "--kyverno-version", version],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "waiver not carried" in r.output and "not carried into jsonschema" in r.output
    assert (
        "policykit/waivers/data.json" in Bundle.unpack((out / "bundle.tar.gz").read_bytes()).files
    )
    exceptions = list(yaml.safe_load_all((out / "kyverno/exceptions.yaml").read_text()))
    schema = _crd_schema(CRDS / "policies.kyverno.io_policyexceptions.json", version)
    for e in exceptions:
        assert e["apiVersion"] == f"policies.kyverno.io/{version}"
        Draft202012Validator(schema).validate(e)
        assert e["spec"]["expiresAt"] == "2026-12-23T23:59:59Z"
    assert {e["metadata"]["annotations"]["policykit.io/rule"] for e in exceptions} == {
        "K8S-002", "ACME-002", "K8S-003"
    }  # fmt: skip
    kust = yaml.safe_load((out / "kyverno/kustomization.yaml").read_text())
    assert "exceptions.yaml" in kust["resources"]
    constraints = list(
        yaml.safe_load_all((out / "gatekeeper/constraints/starter.yaml").read_text())
    )
    excluded = {
        c["metadata"]["annotations"]["policykit.io/rule"]: c["spec"]["match"].get(
            "excludedNamespaces"
        )
        for c in constraints
    }
    assert excluded["K8S-002"] == ["prod-search"] and excluded["K8S-003"] == ["bat*"]
    bindings = [
        d
        for d in yaml.safe_load_all((out / "vap/starter.yaml").read_text())
        if d["kind"] == "ValidatingAdmissionPolicyBinding"
    ]
    narrowed = [b for b in bindings if b["spec"].get("matchResources")]
    assert len(narrowed) == 1  # K8S-002 (exact namespace); K8S-003's prefix is not carried
    # expired waivers are not exported at all
    r = CliRunner().invoke(
        cli,
        ["build", "--target", "kyverno", "--out", str(tmp_path / "late"), "--waivers", str(wf),
         "--today", "2027-06-01"],
    )  # fmt: skip
    assert r.exit_code == 0 and not (tmp_path / "late/exceptions.yaml").exists()


def test_bundle_carries_waivers_to_opa() -> None:
    """The OPA bundle carries waivers as data; its entry points drop exactly the
    findings a waiver in force accepts (expiry checked against OPA's clock)."""
    from policykit.engines.rego import load_opa
    from policykit.targets.rego.bundle import Bundle, build_bundle
    from policykit.waivers import apply

    packs, params, docs = _examples()
    eff = NativeEngine(packs, params).effective_params
    today = dt.datetime.now(dt.UTC).date()
    in_force = [
        Waiver("K8S-002", "r", "o", today + dt.timedelta(days=3), {"namespace": "prod-*"}),
        Waiver("CAT-001", "r", "o", today, {"kind": "Component", "name": "search-indexer"}),
        Waiver("ACME-002", "r", "o", today - dt.timedelta(days=1), {}),  # expired: inert
        Waiver("K8S-003", "r", "o", today, {"file": "*.yaml"}),  # cannot travel
    ]
    bundle = Bundle.unpack(build_bundle(packs, eff, waivers=in_force).pack())
    assert "policykit/waivers/data.json" in bundle.files
    opa = load_opa().OpaEngine()
    for path, text in bundle.modules().items():
        opa.add_policy(path, text)
    for path, data in bundle.data_files().items():
        opa.add_data(data, ".".join(path.rsplit("/", 1)[0].split("/")))
    got = opa.eval_document("policykit.main.batch", {"objects": [d.obj for d in docs]})
    native = NativeEngine(packs, params)
    carried = [w for w in in_force if "file" not in w.match]
    for doc, findings in zip(docs, got, strict=True):
        outcome = apply(native.evaluate(doc), carried, today)
        want = sorted((f.rule, f.message) for f in outcome.findings if f.waiver is None)
        assert sorted((f["id"], f["msg"]) for f in findings) == want, doc.file
    total = sum(len(native.evaluate(d)) for d in docs)
    assert sum(len(x) for x in got) < total  # the waivers did remove findings
