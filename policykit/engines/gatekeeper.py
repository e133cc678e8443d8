"""Local Gatekeeper: a ConstraintTemplate + Constraint over an object, as
Gatekeeper's admission webhook evaluates them — ``spec.match`` (kinds, scope,
namespaces, excludedNamespaces, labelSelector, namespaceSelector, name), then
the template's Rego with ``input = {"review": <AdmissionRequest>, "parameters":
<constraint spec.parameters>}``, through regopy or real OPA.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from policykit.engines.admission import label_selector_matches, request_for
from policykit.engines.rego import load_opa
from policykit.errors import PolicykitError
from policykit.targets.k8s.kinds import for_object

Engine = Literal["rego", "opa"]
_PACKAGE_RE = re.compile(r"^package\s+([A-Za-z0-9_.]+)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Violation:
    constraint: str
    action: str
    message: str
    details: Any


def _glob(patterns: list[str], value: str) -> bool:
    return any(value.startswith(p[:-1]) if p.endswith("*") else p == value for p in patterns)


def match(
    m: Mapping[str, Any] | None,
    obj: Mapping[str, Any],
    namespace_object: Mapping[str, Any] | None = None,
) -> bool:
    """Gatekeeper's ``spec.match``: every given matcher must hold."""
    if not m:
        return True
    api = str(obj.get("apiVersion", ""))
    group = api.rpartition("/")[0]
    kind = obj.get("kind")
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    info = for_object(dict(obj))
    namespaced = info.namespaced if info else bool(meta.get("namespace"))
    ns = meta.get("namespace") if namespaced else None
    if kind == "Namespace":
        ns = meta.get("name")
    if m.get("kinds"):
        ok = False
        for k in m["kinds"]:
            groups, kinds = k.get("apiGroups") or ["*"], k.get("kinds") or ["*"]
            if ("*" in groups or group in groups) and ("*" in kinds or kind in kinds):
                ok = True
        if not ok:
            return False
    scope = m.get("scope", "*")
    if (scope == "Namespaced" and not namespaced) or (scope == "Cluster" and namespaced):
        return False
    if m.get("namespaces") and (ns is None or not _glob(m["namespaces"], ns)):
        return False
    if m.get("excludedNamespaces") and ns is not None and _glob(m["excludedNamespaces"], ns):
        return False
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    assert isinstance(labels, dict)
    if "labelSelector" in m and not label_selector_matches(m["labelSelector"], labels):
        return False
    if "namespaceSelector" in m:
        ns_meta = (namespace_object or {}).get("metadata") or {}
        if kind == "Namespace":
            ns_meta = meta
        if not label_selector_matches(m["namespaceSelector"], ns_meta.get("labels") or {}):
            return False
    return not (m.get("name") and not _glob([m["name"]], str(meta.get("name", ""))))


class TemplateRunner:
    """A ConstraintTemplate compiled once; evaluate it with any constraint."""

    def __init__(self, template: Mapping[str, Any], engine: Engine = "rego") -> None:
        target = template["spec"]["targets"][0]
        code = [c for c in target.get("code") or [] if c.get("engine") == "Rego"]
        if not code or code[0]["source"].get("version") != "v1":
            raise PolicykitError(
                "only Rego v1 templates under code: are evaluated locally",
                hint="policykit build --target gatekeeper emits them",
            )
        source = code[0]["source"]
        found = _PACKAGE_RE.search(source["rego"])
        if found is None:
            raise PolicykitError("the template's Rego has no package")
        self.package = found.group(1)
        self.engine = engine
        modules = {"template.rego": source["rego"]}
        for i, lib in enumerate(source.get("libs") or []):
            modules[f"lib{i}.rego"] = lib
        if engine == "rego":
            import regopy

            from policykit.targets.rego.compiler import regopy_modules

            modules["harness.rego"] = (
                "package policykit_harness\n\n"
                'violations := [{"msg": base64.encode(v.msg), "details": v.details} |\n'
                f"\tsome v in data.{self.package}.violation\n]\n"
            )
            builder = regopy.Interpreter()
            for path, text in regopy_modules(modules).items():
                builder.add_module(path, text)
            try:
                self._bundle = builder.build(None, ["policykit_harness/violations"])
            except regopy.RegoError as exc:
                raise PolicykitError(f"regopy cannot compile the template: {exc}") from None
            self._runner = regopy.Interpreter()
        else:
            opa = load_opa()
            self._opa = opa.OpaEngine()
            for path, text in modules.items():
                self._opa.add_policy(path, text)
            self._undefined = opa.OpaUndefinedError

    def violations(self, review: Mapping[str, Any], parameters: Any) -> list[dict[str, Any]]:
        doc = {"review": review, "parameters": parameters if parameters is not None else {}}
        if self.engine == "rego":
            from policykit.engines.rego import refuse_quoted

            refuse_quoted(doc, "the admission review")
            self._runner.set_input(doc)
            out = self._runner.query_bundle_entrypoint(self._bundle, "policykit_harness/violations")
            results = out.results
            if not results:
                raise PolicykitError("regopy could not evaluate the template")
            exprs = results[0].expressions
            found = exprs[0] if exprs else []
            return [
                {"msg": base64.b64decode(v["msg"]).decode("utf-8"), "details": v.get("details")}
                for v in found
            ]
        try:
            got = self._opa.eval_document(f"{self.package}.violation", doc)
        except self._undefined:
            return []
        return list(got or [])


def evaluate(
    runner: TemplateRunner,
    constraint: Mapping[str, Any],
    obj: Mapping[str, Any],
    *,
    operation: str = "CREATE",
    namespace_object: Mapping[str, Any] | None = None,
) -> list[Violation]:
    """Violations of one constraint for one object under admission."""
    spec = constraint.get("spec") or {}
    if not match(spec.get("match"), obj, namespace_object):
        return []
    review = request_for(obj, operation)
    review["object"] = obj
    if namespace_object is not None:
        review["namespaceObject"] = namespace_object
    name = constraint["metadata"]["name"]
    action = spec.get("enforcementAction", "deny")
    return [
        Violation(name, action, v["msg"], v.get("details"))
        for v in runner.violations(review, spec.get("parameters"))
    ]
