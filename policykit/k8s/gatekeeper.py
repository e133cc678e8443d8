"""Local Gatekeeper: a ConstraintTemplate + Constraint over an object, as
Gatekeeper's admission webhook evaluates them — ``spec.match`` (kinds, scope,
namespaces, excludedNamespaces, labelSelector, namespaceSelector, name), then
the template's Rego with ``input = {"review": <AdmissionRequest>, "parameters":
<constraint spec.parameters>}``, through regopy or real OPA.
"""

from __future__ import annotations

import atexit
import base64
import copy
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from policykit.engines.cel import CelEvalError, program
from policykit.engines.rego import load_opa
from policykit.errors import PolicyError, PolicykitError, SourceLoc
from policykit.k8s import defaulting
from policykit.k8s.errors import Unsupported
from policykit.k8s.gatekeeper_source import (
    TemplateSource,
    is_policykit_template,
    regopy_patterns,
    template_source,
)
from policykit.k8s.kinds import for_object
from policykit.k8s.matching import gatekeeper_match as match
from policykit.k8s.request import request_for
from policykit.k8s.validating import bind_variables, error_text, failed_validations

__all__ = [
    "Engine",
    "TemplateRunner",
    "TemplateSource",
    "Unsupported",
    "Violation",
    "evaluate",
    "inventory_of",
    "is_policykit_template",
    "match",
    "regopy_patterns",
    "review_of",
    "template_source",
]

Engine = Literal["rego", "opa"]


@dataclass(frozen=True, slots=True)
class Violation:
    constraint: str
    action: str
    message: str
    details: Any


_MAY_READ_INVENTORY = re.compile(r"inventory|\bdata\b(?!\s*\.)")
"""What a template's Rego needs to read ``data.inventory``: the word (a
static ref, an import), or ``data`` not followed by a field (``data[k]``,
``import data as d``, ``walk(data, ...)``). A template whose modules have
neither cannot read it, and its engine is built without the inventory (a copy
per template: OPA converts it at ~0.2 ms per object replicated). Also
matched, harmlessly: ``object.data[k]`` of a ConfigMap."""


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


_BUNDLES: dict[str, Any] = {}
"""regopy bundles by a digest of their content (policykit's or not, package,
modules, data): each costs ~0.1-0.5 s to build, and ``check --policy`` and
``test`` build runners for the same templates again (per suite); ``verify``
builds its runners once per process.
A bundle is read-only; each runner queries it with its own interpreter.
Real OPA's engines are not kept: each is built per runner in OPA's own
process (:mod:`policykit.engines.opa_host`)."""

_BUNDLES_KEPT = 256
atexit.register(_BUNDLES.clear)  # freed while regopy can still free them


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
        self.own = is_policykit_template(template)
        self.kind = self.source.kind
        self.engine = engine
        self.where = where
        self._compiled: dict[str, Any] = {}
        self._last: tuple[Any, Any] = (None, None)  # (inventory, compiled): no re-keying
        self._runner: Any = None  # one regopy interpreter, its input set per query
        modules = self.source.modules.values()
        self.reads_inventory = any(_MAY_READ_INVENTORY.search(t) for t in modules)
        schema: Any = template
        for key in ("spec", "crd", "spec", "validation", "openAPIV3Schema"):
            schema = schema.get(key) if isinstance(schema, Mapping) else None
        # the schema of spec.parameters, when it has defaults to fill in
        wrapped = {"properties": {"parameters": schema}}
        self._parameters_schema = schema if defaulting.has_defaults(wrapped) else None
        self._defaulted: tuple[Any, dict[str, Any]] | None = None  # (constraint, with defaults)
        if self.source.engine == "Rego":
            self.package = self.source.package
            self._prepare(None)  # compile errors surface now

    def with_defaults(self, constraint: Mapping[str, Any]) -> Mapping[str, Any]:
        """``constraint`` as Gatekeeper keeps it: the defaults of the template's
        parameter schema filled into ``spec.parameters`` (:mod:`policykit.k8s.defaulting`;
        a copy, made once for the constraint last asked about)."""
        schema = self._parameters_schema
        if schema is None:
            return constraint
        last = self._defaulted
        if last is not None and last[0] is constraint:
            return last[1]
        made = copy.deepcopy(dict(constraint))
        spec = made.get("spec")
        if isinstance(spec, dict):
            defaulting.default(spec, {"properties": {"parameters": schema}})
        self._defaulted = (constraint, made)
        return made

    def prepare(self, inventory: Mapping[str, Any] | None) -> None:
        """Build the engine for ``inventory`` now (before a fork: workers then
        share its build instead of each keying and converting the inventory)."""
        self._prepare(inventory)

    def _prepare(self, inventory: Mapping[str, Any] | None) -> Any:
        if not self.reads_inventory:
            inventory = None  # never read: not copied into this template's engine
        if inventory is not None and inventory is self._last[0]:
            return self._last[1]  # the same inventory as the last call (one per run)
        key = json.dumps(inventory, sort_keys=True) if inventory else ""
        if key in self._compiled:
            if inventory:
                self._last = (inventory, self._compiled[key])
            return self._compiled[key]
        modules = dict(self.source.modules)
        data = {"inventory": inventory} if inventory else None
        compiled: Any
        content = (
            hashlib.sha256(
                json.dumps([self.own, self.package, sorted(modules.items()), key]).encode()
            ).hexdigest()
            if self.engine == "rego"
            else ""
        )
        if content in _BUNDLES:
            compiled = _BUNDLES[content]  # the same template and data: built once
        elif self.engine == "rego":
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
            builder = regopy.Interpreter()
            if self.own:
                modules = regopy_modules(modules)
            else:
                modules = {
                    p: t if p == "harness.rego" else regopy_patterns(t) for p, t in modules.items()
                }
            for path, text in modules.items():
                builder.add_module(path, text)
            if data is not None:
                from policykit.engines.rego import (
                    EngineLimitation,
                    InventoryLimitation,
                    refuse_quoted,
                )

                try:
                    refuse_quoted(data, "the inventory", self.where)
                except EngineLimitation as exc:  # the inventory's, not one object's
                    raise InventoryLimitation(exc.message, loc=exc.loc, hint=exc.hint) from None
                builder.add_data(data)
            try:
                compiled = (builder.build(None, ["policykit_harness/violations"]), None)
            except regopy.RegoError as exc:
                raise PolicyError(
                    f"regopy cannot compile the template: {str(exc).splitlines()[0]}",
                    loc=self.where,
                ) from None
            if len(_BUNDLES) >= _BUNDLES_KEPT:
                del _BUNDLES[next(iter(_BUNDLES))]  # the oldest
            _BUNDLES[content] = compiled
        else:
            opa = load_opa()
            engine = opa.OpaEngine()
            if self.package != _MANY:  # many reviews in one query (violations_many)
                modules["policykit_many.rego"] = _many_harness(self.package)
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
        constraint: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """The template's violations of ``review`` under a constraint's
        ``parameters`` (``constraint``: the whole constraint, which a CEL
        template reads as ``params``; default: one holding ``parameters``)."""
        if self.source.engine == "K8sNativeValidation":
            if constraint is None:
                constraint = {"spec": {} if parameters is None else {"parameters": parameters}}
            return self._cel(review, constraint)
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

    def violations_many(
        self,
        reviews: Sequence[Mapping[str, Any]],
        parameters: Any,
        inventory: Mapping[str, Any] | None = None,
    ) -> list[list[dict[str, Any]]] | None:
        """:meth:`violations` of each review, in one real-OPA query (a pipe round
        trip and a query per review cost more than the evaluation of most
        templates); None where only one review at a time is possible (regopy,
        a CEL template) or when OPA fails on the batch (the caller then asks
        review by review, which reports the error of the review it is in)."""
        if self.engine != "opa" or self.source.engine != "Rego" or self.package == _MANY:
            return None
        engine, _ = self._prepare(inventory)
        doc = {"reviews": list(reviews), "parameters": parameters if parameters is not None else {}}
        try:
            got = engine.eval_document(f"{_MANY}.batch", doc)
        except load_opa().OpaError:
            return None
        if not isinstance(got, list) or len(got) != len(reviews):
            return None
        return [
            [{"msg": v.get("msg"), "details": v.get("details", {})} for v in found or []]
            for found in got
        ]

    def _cel(
        self, review: Mapping[str, Any], constraint: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """Gatekeeper's CEL engine: ``params`` is the constraint
        (pkg/drivers/k8scel/driver.go), ``variables.params`` its
        ``spec.parameters`` (null without) and ``variables.anyObject`` the
        object, or oldObject on DELETE (pkg/drivers/k8scel/transform/
        cel_snippets.go); then the source's variables, match conditions and
        validations; an evaluation error is a violation under ``failurePolicy:
        Fail`` (the default) and nothing under ``Ignore``."""
        src = self.source.cel
        obj = review.get("object")
        any_object = review.get("oldObject") if review.get("operation") == "DELETE" else obj
        request = {k: v for k, v in review.items() if k not in ("object", "oldObject")}
        spec = constraint.get("spec")
        params = spec.get("parameters") if isinstance(spec, Mapping) else None
        if isinstance(spec, Mapping) and "enforcementAction" not in spec:
            # the constraint CRD's own default (frameworks crds/schema.go CreateSchema)
            constraint = {**constraint, "spec": {**spec, "enforcementAction": "deny"}}
        data: dict[str, Any] = {
            "object": obj,
            "oldObject": review.get("oldObject"),
            "request": request,
            "namespaceObject": review.get("namespaceObject"),
            "params": constraint,
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
            items = [
                *(src.get("validations") or []),
                *(src.get("variables") or []),
                *(src.get("matchConditions") or src.get("matchCondition") or []),
            ]
            messages = [error_text(exc, items)]
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
    if target is None or scoped_actions(constraint) == ():
        return []  # nothing to review, or not enforced at gator's point
    if not match(spec.get("match"), target, namespace_object):
        return []
    if namespace_object is not None:
        review["namespaceObject"] = namespace_object
    name = constraint["metadata"]["name"]
    action = spec.get("enforcementAction", "deny")
    constraint = runner.with_defaults(constraint)
    parameters = (constraint.get("spec") or {}).get("parameters")
    return [
        Violation(name, action, str(v["msg"]), v.get("details"))
        for v in runner.violations(review, parameters, inventory, constraint)
    ]


GATOR_POINT = "gator.gatekeeper.sh"
"""The enforcement point policykit evaluates constraints at, as gator does
(gatekeeper pkg/gator/test/test.go, verify/runner.go)."""


def scoped_actions(constraint: Mapping[str, Any]) -> tuple[str, ...] | None:
    """For a constraint whose ``enforcementAction`` is ``scoped``, the actions
    of its ``scopedEnforcementActions`` that name gator's enforcement point
    or ``*`` (frameworks constraint_client.go ``matches``; none: the
    constraint is not enforced there and gives no result); None otherwise."""
    spec = constraint.get("spec")
    if not isinstance(spec, Mapping) or spec.get("enforcementAction") != "scoped":
        return None
    actions: list[str] = []
    for entry in spec.get("scopedEnforcementActions") or []:
        if not isinstance(entry, Mapping):
            continue
        points = [
            p.get("name") for p in entry.get("enforcementPoints") or [] if isinstance(p, Mapping)
        ]
        if "*" in points or GATOR_POINT in points:
            actions.append(str(entry.get("action", "")).lower())
    return tuple(dict.fromkeys(actions))


_MANY = "policykit_many"


def _many_harness(package: str) -> str:
    """``batch``: per review of ``input.reviews``, ``data.<package>.violation``
    with the input Gatekeeper gives it (``{"review", "parameters"}``), in order."""
    return (
        f"package {_MANY}\n\n"
        "batch := [found |\n"
        "\tparameters := input.parameters\n"
        "\tsome review in input.reviews\n"
        f"\tfound := [v | some v in data.{package}.violation]"
        ' with input as {"review": review, "parameters": parameters}\n'
        "]\n"
    )


CHUNK = 200
"""Reviews per query of :func:`evaluate_many`."""


def evaluate_many(
    runner: TemplateRunner,
    constraint: Mapping[str, Any],
    objs: Sequence[Mapping[str, Any]],
    namespace_objects: Sequence[Mapping[str, Any] | None],
    *,
    inventory: Mapping[str, Any] | None = None,
) -> list[list[Violation] | PolicykitError]:
    """:func:`evaluate` (operation CREATE) of each object, with its namespace
    object: its violations, or the error evaluating it raised. In real OPA
    the objects ``spec.match`` selects are evaluated in batches of
    :data:`CHUNK` (:meth:`TemplateRunner.violations_many`); a batch OPA fails
    on, and every other engine, one object at a time."""
    spec = constraint.get("spec") or {}
    name = constraint["metadata"]["name"]
    action = spec.get("enforcementAction", "deny")
    out: list[list[Violation] | PolicykitError] = [[] for _ in objs]
    if scoped_actions(constraint) == ():  # not enforced at gator's point
        return out
    reviews: list[dict[str, Any]] = []
    at: list[int] = []
    for i, (obj, ns) in enumerate(zip(objs, namespace_objects, strict=True)):
        review = request_for(obj, "CREATE")
        review["object"] = obj
        try:
            if not match(spec.get("match"), obj, ns):
                continue
        except PolicykitError as exc:
            out[i] = exc
            continue
        if ns is not None:
            review["namespaceObject"] = ns
        reviews.append(review)
        at.append(i)
    constraint = runner.with_defaults(constraint)
    parameters = (constraint.get("spec") or {}).get("parameters")
    for lo in range(0, len(reviews), CHUNK):
        part = reviews[lo : lo + CHUNK]
        many = runner.violations_many(part, parameters, inventory)
        for j, review in enumerate(part):
            try:
                found = (
                    many[j]
                    if many is not None
                    else runner.violations(review, parameters, inventory, constraint)
                )
            except PolicykitError as exc:
                out[at[lo + j]] = exc
                continue
            out[at[lo + j]] = [
                Violation(name, action, str(v["msg"]), v.get("details")) for v in found
            ]
    return out
