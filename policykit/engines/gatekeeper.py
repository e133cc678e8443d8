"""Local Gatekeeper: a ConstraintTemplate + Constraint over an object, as
Gatekeeper's admission webhook evaluates them — ``spec.match`` (kinds, scope,
namespaces, excludedNamespaces, labelSelector, namespaceSelector, name), then
the template's Rego with ``input = {"review": <AdmissionRequest>, "parameters":
<constraint spec.parameters>}``, through regopy or real OPA.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from policykit.engines.admission import (
    bind_variables,
    failed_validations,
    label_selector_matches,
    request_for,
)
from policykit.engines.cel import CelEvalError, program
from policykit.engines.rego import load_opa
from policykit.errors import PolicyError, PolicykitError, SourceLoc
from policykit.targets.k8s.kinds import for_object

Engine = Literal["rego", "opa"]
_PACKAGE_RE = re.compile(r"^package\s+([A-Za-z0-9_.]+)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Violation:
    constraint: str
    action: str
    message: str
    details: Any


def _wildcard(pattern: str, value: str) -> bool:
    """Gatekeeper's ``util.Wildcard``: exact, ``prefix*`` or ``*suffix``."""
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return pattern == value


def _glob(patterns: list[str], value: str) -> bool:
    return any(_wildcard(p, value) for p in patterns)


def match(
    m: Mapping[str, Any] | None,
    obj: Mapping[str, Any],
    namespace_object: Mapping[str, Any] | None = None,
) -> bool:
    """Gatekeeper's ``spec.match`` (``pkg/mutation/match``): every given matcher
    must hold. The namespace is the Namespace's own name, else the namespace
    object's, else the one the object declares (as gator does); an object
    with none is cluster-scoped and passes the namespace matchers."""
    if not m:
        return True
    api = str(obj.get("apiVersion", ""))
    group = api.rpartition("/")[0]
    kind = obj.get("kind")
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    is_namespace = kind == "Namespace" and group == ""
    ns_meta = (namespace_object or {}).get("metadata") or {}
    if is_namespace:
        ns: str | None = str(meta.get("name", ""))
    elif namespace_object is not None:
        ns = str(ns_meta.get("name", ""))
    else:
        ns = str(meta["namespace"]) if meta.get("namespace") else None
    if m.get("kinds"):
        ok = False
        for k in m["kinds"]:
            groups, kinds = k.get("apiGroups") or ["*"], k.get("kinds") or ["*"]
            if ("*" in groups or group in groups) and ("*" in kinds or kind in kinds):
                ok = True
        if not ok:
            return False
    has_namespace = bool(meta.get("namespace")) or namespace_object is not None
    scope = m.get("scope", "*")
    if scope == "Cluster" and not (is_namespace or not has_namespace):
        return False
    if scope == "Namespaced" and not (not is_namespace and has_namespace):
        return False
    if m.get("namespaces") and ns is not None and not _glob(m["namespaces"], ns):
        return False
    if m.get("excludedNamespaces") and ns is not None and _glob(m["excludedNamespaces"], ns):
        return False
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    assert isinstance(labels, dict)
    if m.get("labelSelector") is not None and not label_selector_matches(
        m["labelSelector"], labels
    ):
        return False
    if m.get("namespaceSelector") is not None and (is_namespace or ns is not None):
        sel_labels = labels if is_namespace else (ns_meta.get("labels") or {})
        if not label_selector_matches(m["namespaceSelector"], sel_labels):
            return False
    return not (m.get("name") and not _wildcard(str(m["name"]), str(meta.get("name", ""))))


class Unsupported(PolicykitError):
    """A policy needs what local evaluation does not provide (external data,
    ``http.send``, expansion, …): the caller reports it as skipped, never as
    a pass."""

    code = "PK402"


_UNSUPPORTED_REGO = (
    (re.compile(r"\bexternal_data\s*\("), "external data (external_data)"),
    (re.compile(r"\bhttp\.send\s*\("), "http.send"),
)
# regex built-ins: the position of their pattern argument
_PATTERN_ARG = {
    "match": 0,
    "find_n": 0,
    "find_all_string_submatch_n": 0,
    "split": 0,
    "is_valid": 0,
    "replace": 1,
}
_REGOPY_PATTERN = "_pk_regopy_pattern"
_REGOPY_HELPER = (
    f"\n# policykit: regopy reads a regex held in a value as an escaped string once more\n"
    f'{_REGOPY_PATTERN}(p) := replace(p, base64.decode("XA=="), base64.decode("XFw="))\n'
)


def regopy_patterns(text: str) -> str:
    """A third-party module as regopy must run it: each regex built-in's
    pattern that is not a string literal goes through a helper doubling its
    backslashes, because regopy's ``regex.match`` unescapes a pattern held in
    a value once more (docs/engines.md; ``\\.`` from input failed with "Invalid
    escape sequence"). Literal patterns are left as written: regopy keeps their
    escapes, so they already match."""
    from policykit.engines.rego_v0 import tokenize

    tokens = tokenize(text)
    sig = [i for i, t in enumerate(tokens) if t.kind not in ("ws", "nl", "comment")]
    edits: dict[int, str] = {}
    for n, i in enumerate(sig[:-3]):
        if not (
            tokens[i].text == "regex"
            and tokens[sig[n + 1]].text == "."
            and tokens[sig[n + 2]].text in _PATTERN_ARG
            and tokens[sig[n + 3]].text == "("
            and (n == 0 or tokens[sig[n - 1]].text != ".")
        ):
            continue
        want = _PATTERN_ARG[tokens[sig[n + 2]].text]
        depth, arg, start = 0, 0, None
        for m in range(n + 4, len(sig)):
            t = tokens[sig[m]]
            if arg == want and start is None:
                start = m
            if t.text in ("(", "[", "{"):
                depth += 1
            elif t.text in (")", "]", "}"):
                if depth == 0:
                    end = m
                    break
                depth -= 1
            elif t.text == "," and depth == 0:
                if arg == want:
                    end = m
                    break
                arg += 1
        else:
            continue
        if start is None or start >= end:
            continue
        if end - start == 1 and tokens[sig[start]].kind in ("str", "raw"):
            continue  # a literal: regopy already reads it right
        edits[sig[start]] = f"{_REGOPY_PATTERN}(" + edits.get(sig[start], tokens[sig[start]].text)
        last = sig[end - 1]
        edits[last] = edits.get(last, tokens[last].text) + ")"
    if not edits:
        return text
    return "".join(edits.get(i, t.text) for i, t in enumerate(tokens)) + _REGOPY_HELPER


_DATA_REF = re.compile(r"\bdata\.([A-Za-z_][A-Za-z0-9_]*)")


def _rego_problems(name: str, text: str, where: SourceLoc | None) -> None:
    """Gatekeeper's own checks on template Rego, and what we cannot run."""
    code = _strip_strings(text)
    for pattern, what in _UNSUPPORTED_REGO:
        if pattern.search(code):
            raise Unsupported(f"{name} uses {what}", loc=where)
    for ref in _DATA_REF.findall(code):
        if ref not in ("inventory", "lib"):
            raise PolicyError(
                f"{name} references data.{ref}; Gatekeeper rejects the template "
                "(only data.inventory and data.lib are allowed)",
                loc=where,
                hint="read cluster state from data.inventory, helpers from libs",
            )


def _strip_strings(text: str) -> str:
    """Rego text with strings, raw strings and comments blanked out."""
    from policykit.engines.rego_v0 import tokenize

    return "".join(" " if t.kind in ("str", "raw", "comment") else t.text for t in tokenize(text))


@dataclass(frozen=True, slots=True)
class TemplateSource:
    """What a ConstraintTemplate runs, after Gatekeeper's precedence: the
    legacy ``targets[].rego`` (v0) wins over ``code``; in ``code``,
    ``K8sNativeValidation`` wins over ``Rego`` (whose version defaults to v0)."""

    kind: str
    engine: Literal["Rego", "K8sNativeValidation"]
    modules: dict[str, str]
    cel: Mapping[str, Any]


def template_source(template: Mapping[str, Any], where: SourceLoc | None = None) -> TemplateSource:
    spec = template.get("spec") if isinstance(template.get("spec"), dict) else None
    kind = ((((spec or {}).get("crd") or {}).get("spec") or {}).get("names") or {}).get("kind")
    name = str((template.get("metadata") or {}).get("name", ""))
    if not isinstance(kind, str) or not kind:
        raise PolicyError("the ConstraintTemplate has no spec.crd.spec.names.kind", loc=where)
    if name != kind.lower():
        raise PolicyError(
            f"ConstraintTemplate name {name!r} must be the lowercase of its kind {kind!r}",
            loc=where,
            hint=f"name it {kind.lower()!r}",
        )
    targets = (spec or {}).get("targets") or []
    if len(targets) != 1:
        raise PolicyError("a ConstraintTemplate needs exactly one target", loc=where)
    target = targets[0]
    if target.get("rego"):
        rego, libs, version = target["rego"], target.get("libs") or [], "v0"
    else:
        code = target.get("code") or []
        cel = [c for c in code if c.get("engine") == "K8sNativeValidation"]
        if cel:
            return TemplateSource(kind, "K8sNativeValidation", {}, cel[0].get("source") or {})
        regos = [c for c in code if c.get("engine") == "Rego"]
        if not regos:
            engines = sorted({str(c.get("engine")) for c in code}) or ["none"]
            raise Unsupported(
                f"template {name} has no engine policykit runs (engines: {', '.join(engines)})",
                loc=where,
            )
        source = regos[0].get("source") or {}
        rego, libs = source.get("rego", ""), source.get("libs") or []
        version = source.get("version", "v0")
    modules: dict[str, str] = {}
    for i, text in enumerate([rego, *libs]):
        label = name if i == 0 else f"{name} lib {i}"
        from policykit.engines.rego_v0 import RegoUpgradeError

        try:
            _rego_problems(label, str(text), where)
        except RegoUpgradeError as exc:
            line = f" line {exc.loc.line}" if exc.loc else ""
            raise RegoUpgradeError(
                f"{label}, Rego{line}: {exc.message}", loc=where, hint=exc.hint
            ) from None
        found = _PACKAGE_RE.search(str(text))
        if found is None:
            raise PolicyError(f"{label}: the Rego has no package", loc=where)
        if i and (not found.group(1).startswith("lib.")):
            raise PolicyError(
                f"{label}: a lib's package must start with 'lib.' (got {found.group(1)!r})",
                loc=where,
            )
        if version != "v1":
            from policykit.engines.rego_v0 import upgrade

            try:
                text = upgrade(str(text), label)
            except RegoUpgradeError as exc:
                line = f" line {exc.loc.line}" if exc.loc else ""
                raise RegoUpgradeError(
                    f"{label}, Rego{line}: {exc.message}", loc=where, hint=exc.hint
                ) from None
        modules["template.rego" if i == 0 else f"lib{i}.rego"] = str(text)
    return TemplateSource(kind, "Rego", modules, {})


def inventory_of(objects: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``data.inventory`` as Gatekeeper replicates it: cluster-scoped objects
    under ``cluster[<groupVersion>][<Kind>][<name>]``, namespaced ones under
    ``namespace[<ns>][<groupVersion>][<Kind>][<name>]``."""
    inv: dict[str, Any] = {"cluster": {}, "namespace": {}}
    for obj in objects:
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        assert isinstance(meta, dict)
        gv, kind, name = str(obj.get("apiVersion", "")), str(obj.get("kind", "")), meta.get("name")
        info = for_object(dict(obj))
        namespaced = info.namespaced if info else bool(meta.get("namespace"))
        if namespaced:
            ns = str(meta.get("namespace") or "default")
            slot = inv["namespace"].setdefault(ns, {}).setdefault(gv, {}).setdefault(kind, {})
        else:
            slot = inv["cluster"].setdefault(gv, {}).setdefault(kind, {})
        slot[str(name)] = obj
    return inv


class TemplateRunner:
    """A ConstraintTemplate compiled once; evaluate it with any constraint.
    Rego runs in regopy (``engine="rego"``) or real OPA (``"opa"``); a
    ``K8sNativeValidation`` template runs in the local CEL."""

    def __init__(
        self,
        template: Mapping[str, Any],
        engine: Engine = "rego",
        where: SourceLoc | None = None,
    ) -> None:
        self.source = template_source(template, where)
        self.kind = self.source.kind
        self.engine = engine
        self.where = where
        self._compiled: dict[str, Any] = {}
        self._last: tuple[Any, Any] = (None, None)  # (inventory, compiled): no re-keying
        self._runner: Any = None  # one regopy interpreter, its input set per query
        if self.source.engine == "Rego":
            found = _PACKAGE_RE.search(self.source.modules["template.rego"])
            assert found is not None
            self.package = found.group(1)
            self._prepare(None)  # compile errors surface now

    def _prepare(self, inventory: Mapping[str, Any] | None) -> Any:
        if inventory is not None and inventory is self._last[0]:
            return self._last[1]  # the same inventory as the last call (one per run)
        key = json.dumps(inventory, sort_keys=True) if inventory else ""
        if key in self._compiled:
            if inventory:
                self._last = (inventory, self._compiled[key])
            return self._compiled[key]
        modules = dict(self.source.modules)
        data = {"inventory": inventory} if inventory else None
        if self.engine == "rego":
            import regopy

            from policykit.targets.rego.compiler import regopy_modules

            # messages leave regopy base64-encoded: its output printer does not
            # escape backslashes, and its json.marshal escapes quotes twice, so
            # details are not carried (docs/engines.md)
            modules["harness.rego"] = (
                "package policykit_harness\n\n"
                'violations := [{"msg": base64.encode(v.msg)} |\n'
                f"\tsome v in data.{self.package}.violation\n]\n"
            )
            own = any("\npattern(p) := p\n" in t for t in modules.values())
            builder = regopy.Interpreter()
            if own:
                modules = regopy_modules(modules)
            else:
                modules = {
                    p: t if p == "harness.rego" else regopy_patterns(t) for p, t in modules.items()
                }
            for path, text in modules.items():
                builder.add_module(path, text)
            if data is not None:
                from policykit.engines.rego import refuse_quoted

                refuse_quoted(data, "the inventory", self.where)
                builder.add_data(data)
            try:
                compiled: Any = (builder.build(None, ["policykit_harness/violations"]), None)
            except regopy.RegoError as exc:
                raise PolicyError(
                    f"regopy cannot compile the template: {str(exc).splitlines()[0]}",
                    loc=self.where,
                ) from None
        else:
            opa = load_opa()
            engine = opa.OpaEngine()
            try:
                for path, text in modules.items():
                    engine.add_policy(path, text)
                if data is not None:
                    engine.add_data(data)
                engine.eval_document(f"{self.package}.violation", {})
            except opa.OpaUndefinedError:
                pass
            except opa.OpaError as exc:
                raise PolicyError(
                    f"OPA cannot compile the template: {str(exc).splitlines()[0]}",
                    loc=self.where,
                ) from None
            compiled = (engine, opa.OpaUndefinedError)
        self._compiled[key] = compiled
        if inventory:
            self._last = (inventory, compiled)
        return compiled

    def violations(
        self,
        review: Mapping[str, Any],
        parameters: Any,
        inventory: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        if self.source.engine == "K8sNativeValidation":
            return self._cel(review, parameters)
        doc = {"review": review, "parameters": parameters if parameters is not None else {}}
        compiled = self._prepare(inventory)
        if self.engine == "rego":
            import regopy

            from policykit.engines.rego import refuse_quoted, regopy_input

            refuse_quoted(doc, "the admission review", self.where)
            if self._runner is None:
                self._runner = regopy.Interpreter()
            runner = self._runner
            runner.set_input(regopy_input(doc))
            try:
                out = runner.query_bundle_entrypoint(compiled[0], "policykit_harness/violations")
                results = out.results
            except (ValueError, regopy.RegoError) as exc:  # its output is an error, not JSON
                why = _regopy_error(runner, compiled[0], exc)
                raise PolicyError(
                    f"regopy could not evaluate the template: {why}",
                    loc=self.where,
                    hint="run it with --engine opa",
                ) from None
            if not results:
                raise PolicyError(
                    "regopy could not evaluate the template (no result)",
                    loc=self.where,
                    hint="run it with --engine opa",
                )
            exprs = results[0].expressions
            found = exprs[0] if exprs else []
            return [
                {"msg": base64.b64decode(v["msg"]).decode("utf-8"), "details": None} for v in found
            ]
        engine, undefined = compiled
        opa = load_opa()
        try:
            got = engine.eval_document(f"{self.package}.violation", doc)
        except undefined:
            return []
        except opa.OpaError as exc:
            raise PolicyError(
                f"OPA could not evaluate the template: {str(exc).splitlines()[0]}",
                loc=self.where,
            ) from None
        return [{"msg": v.get("msg"), "details": v.get("details", {})} for v in got or []]

    def _cel(self, review: Mapping[str, Any], parameters: Any) -> list[dict[str, Any]]:
        """Gatekeeper's CEL engine: ``variables.params`` and ``variables.anyObject``
        (the object, or oldObject on DELETE), then the source's variables,
        match conditions and validations; an evaluation error is a violation
        under ``failurePolicy: Fail`` (the default) and nothing under ``Ignore``."""
        src = self.source.cel
        obj = review.get("object")
        any_object = review.get("oldObject") if review.get("operation") == "DELETE" else obj
        request = {k: v for k, v in review.items() if k not in ("object", "oldObject")}
        params = parameters if parameters is not None else {}
        data: dict[str, Any] = {
            "object": obj,
            "oldObject": review.get("oldObject"),
            "request": request,
            "namespaceObject": review.get("namespaceObject"),
            "params": params,
        }
        try:
            for cond in src.get("matchConditions") or src.get("matchCondition") or []:
                if (
                    program(str(cond["expression"])).eval(
                        {**data, "variables": {"params": params, "anyObject": any_object}}
                    )
                    is not True
                ):
                    return []
            bind_variables(
                src.get("variables") or [], data, {"params": params, "anyObject": any_object}
            )
            messages = failed_validations(src.get("validations") or [], data)
        except CelEvalError as exc:
            if src.get("failurePolicy") == "Ignore":
                return []
            messages = [exc.message]
        return [{"msg": m, "details": {}} for m in messages]


def _regopy_error(runner: Any, bundle: Any, exc: Exception) -> str:
    """The ``errormsg`` regopy printed instead of a result, else the exception."""
    try:
        from regopy.interpreter import rego_bundle_query_entrypoint
        from regopy.output import rego_output_string

        raw = rego_output_string(
            rego_bundle_query_entrypoint(runner._impl, bundle._impl, "policykit_harness/violations")
        )
        found = re.search(r"\(errormsg \d+:([^\n)]*)", raw)
        if found:
            return found.group(1).strip()
    except Exception:
        pass
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def review_of(request: Mapping[str, Any]) -> tuple[dict[str, Any], Mapping[str, Any] | None]:
    """``input.review`` from an AdmissionReview's ``request`` and the object
    ``spec.match`` is applied to (``oldObject`` on DELETE)."""
    review = dict(request)
    review.setdefault("operation", "CREATE")
    obj = review.get("object")
    if review["operation"] == "DELETE" or not isinstance(obj, dict):
        obj = review.get("oldObject")
    return review, obj if isinstance(obj, dict) else None


def evaluate(
    runner: TemplateRunner,
    constraint: Mapping[str, Any],
    obj: Mapping[str, Any] | None,
    *,
    operation: str = "CREATE",
    namespace_object: Mapping[str, Any] | None = None,
    inventory: Mapping[str, Any] | None = None,
    request: Mapping[str, Any] | None = None,
) -> list[Violation]:
    """Violations of one constraint for one object under admission. Pass
    ``request`` (an AdmissionReview's) to set operation, userInfo and
    oldObject; ``inventory`` is ``data.inventory`` (see :func:`inventory_of`)."""
    spec = constraint.get("spec") or {}
    if request is not None:
        review, target = review_of(request)
    else:
        assert obj is not None
        review = request_for(obj, operation)
        review["object"] = obj
        target = obj
    if target is None or not match(spec.get("match"), target, namespace_object):
        return []
    if namespace_object is not None:
        review["namespaceObject"] = namespace_object
    name = constraint["metadata"]["name"]
    action = spec.get("enforcementAction", "deny")
    return [
        Violation(name, action, str(v["msg"]), v.get("details"))
        for v in runner.violations(review, spec.get("parameters"), inventory)
    ]
