"""The admission evaluators: ValidatingAdmissionPolicy (+ Binding) as the API
server runs it, and Kyverno ValidatingPolicy as Kyverno runs it — one
evaluator each, used by ``policykit verify`` (policykit's own generated
manifests) and by the runner for existing policies (``policykit test``,
``check --policy``).

ValidatingPolicy follows Kyverno's engine (kyverno/kyverno
``pkg/cel/policies/vpol/engine/engine.go`` and ``.../compiler/policy.go``):

1. the evaluation mode (``spec.evaluation.mode``): ``Kubernetes`` (the
   default) runs as admission; ``JSON`` evaluates the document as a plain
   JSON payload — no ``matchConstraints``, and ``object`` is the only
   variable (the CLI routes JSON-mode policies so,
   ``cmd/cli/kubectl-kyverno/processor/policy_processor.go``);
2. the policy and each spec generated for Pod controllers
   (:mod:`policykit.k8s.autogen`) whose ``matchConstraints`` match gives one
   result; none matching gives no result;
3. PolicyExceptions, before ``matchConditions`` (:mod:`policykit.k8s.exceptions`);
4. ``matchConditions`` (not all true: ``skip``), then the variables, then the
   validations in order: the first that is not true fails the policy with
   its message; one that errors is an ``error`` result.

Kyverno compiles CEL with cel-go; each expression goes through
:mod:`policykit.k8s.celcompat` first. A message is the ``messageExpression``
when it yields one line of text, else ``message``, else ``failed expression:
…`` (the API server's rule, which policykit's generated manifests are
written for).
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from policykit.engines.cel import (
    CelEvalError,
    View,
    active_lookups,
    program,
    using_lookups,
)
from policykit.engines.cel_bindings import Bindings, Declarations
from policykit.k8s.autogen import vpol_specs
from policykit.k8s.celtexts import (
    cel_go_compat,
    cel_texts,
    outside_use,
    unknown_library,
)
from policykit.k8s.errors import Unsupported
from policykit.k8s.exceptions import exemption, for_policy
from policykit.k8s.kinds import NAMESPACE_NAME_LABEL
from policykit.k8s.matching import Constraints, conditions_hold
from policykit.k8s.request import (
    Context,
    Review,
    admission_data,
    current_session,
    metadata,
)

Status = Literal["pass", "fail", "skip", "error", "unsupported"]
VPOL_KINDS = ("ValidatingPolicy", "NamespacedValidatingPolicy")


@dataclass(frozen=True, slots=True)
class Decision:
    """One failed validation: which policy, its rule, the actions and the text."""

    policy: str
    rule: str
    actions: tuple[str, ...]
    message: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """One rule's result for one resource, as ``kyverno test`` reports it."""

    policy: str
    rule: str
    status: Status
    message: str = ""
    action: str = "Audit"  # Enforce | Audit (ValidatingPolicy: Deny | Audit | Warn)
    # False when the rule does not apply to the resource at all: Kyverno's engine
    # then gives no rule response (a rule that applies and skips gives one)
    applied: bool = True


def rule_of(manifest: Mapping[str, Any]) -> str:
    """The policykit rule id a manifest enforces (its ``policykit.io/rule`` annotation)."""
    return str(metadata(manifest).get("annotations", {}).get("policykit.io/rule", ""))


def policy_name(policy: Mapping[str, Any]) -> str:
    """A policy's name as reports give it (``<namespace>/<name>`` when namespaced)."""
    meta = metadata(policy)
    name = str(meta.get("name", ""))
    if policy.get("kind") in ("Policy", "NamespacedValidatingPolicy") and meta.get("namespace"):
        return f"{meta['namespace']}/{name}"
    return name


# --- CEL pieces shared by VAP, ValidatingPolicy and ClusterPolicy validate.cel -------


def bind_variables(
    variables: Sequence[Mapping[str, Any]],
    data: dict[str, Any],
    base: Mapping[str, Any] | None = None,
) -> None:
    """``variables.<name>`` for each declared variable, in order (each may use the
    ones before it). One that fails to evaluate is left out, so an expression
    that uses it errors, as the lazy evaluation in the API server does."""
    bound: dict[str, Any] = dict(base or {})
    data["variables"] = bound
    for var in variables:
        try:
            bound[str(var["name"])] = program(str(var["expression"])).eval(data)
        except CelEvalError:
            continue


def message_of(v: Mapping[str, Any], data: Mapping[str, Any] | View) -> str:
    """A failed validation's message: the ``messageExpression`` when it yields
    one line of text, else ``message``, else ``failed expression: …``."""
    message = str(v.get("message") or "") or f"failed expression: {v['expression']}"
    if v.get("messageExpression"):
        try:
            text = program(v["messageExpression"]).eval(data)
        except CelEvalError:
            text = None
        if isinstance(text, str) and text.strip() and "\n" not in text:
            message = text
    return message


def failed_validations(
    validations: Sequence[Mapping[str, Any]], data: Mapping[str, Any] | View
) -> list[str]:
    """The message of every validation whose expression is not true. An
    expression that errors raises :class:`CelEvalError` (failure policy is the
    caller's business)."""
    return [
        message_of(v, data) for v in validations if program(v["expression"]).eval(data) is not True
    ]


def cel_error(expression: str, exc: CelEvalError) -> str:
    """The API server's text for an expression that errors
    (k8s.io/apiserver/pkg/admission/plugin/cel/filter.go)."""
    detail = exc.message.removeprefix("CEL evaluation error: ")
    detail = detail.removesuffix(f" in {expression[:120]}")
    # cel-cpp's words for a missing key, in cel-go's (common/types/err.go)
    missing = _CPP_NO_SUCH_KEY.fullmatch(detail)
    if missing is not None:
        detail = f"no such key: {missing.group(1)}"
    return f"expression '{expression}' resulted in error: {detail}"


_CPP_NO_SUCH_KEY = re.compile(r'NOT_FOUND: Key not found in map : "((?:[^"\\]|\\.)*)"')


def error_text(exc: CelEvalError, items: Sequence[Mapping[str, Any]]) -> str:
    """:func:`cel_error` of the expression among ``items`` (validations,
    variables, match conditions) that erred, when the error names it; else
    the error's own text."""
    for item in items:
        expression = str((item or {}).get("expression", "")) if isinstance(item, Mapping) else ""
        if expression and exc.message.endswith(f" in {expression[:120]}"):
            return cel_error(expression, exc)
    return exc.message


# --- ValidatingAdmissionPolicy ---------------------------------------------------------


_ANY_RESOURCE = {"apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"], "operations": ["*"]}


@dataclass(frozen=True, slots=True)
class _Vap:
    """A ValidatingAdmissionPolicy and one of its bindings, read once."""

    name: str
    rule: str
    actions: tuple[str, ...]
    bound: bool  # the binding names the policy
    narrow: Constraints | None  # the binding's matchResources
    spec: Mapping[str, Any] | None
    constraints: Constraints
    variables: Declarations
    conditions: Sequence[Mapping[str, Any]]  # the spec's matchConditions
    failure: str  # its failurePolicy
    validations: Sequence[Mapping[str, Any]]


def _prepare_vap(policy: Mapping[str, Any], binding: Mapping[str, Any]) -> _Vap:
    bspec = binding.get("spec") or {}
    name = policy["metadata"]["name"]
    spec = policy.get("spec")
    narrow = bspec.get("matchResources")
    return _Vap(
        name=name,
        rule=rule_of(policy),
        actions=tuple(bspec.get("validationActions") or []),
        bound=bspec.get("policyName") == name,
        narrow=(Constraints({"resourceRules": [_ANY_RESOURCE], **narrow}) if narrow else None),
        spec=spec,
        constraints=Constraints((spec or {}).get("matchConstraints") or {}),
        variables=Declarations((spec or {}).get("variables") or []),
        conditions=(spec or {}).get("matchConditions") or [],
        failure=str((spec or {}).get("failurePolicy") or "Fail"),
        validations=(spec or {}).get("validations") or [],
    )


def _vap_bindings(review: Review, operation: str, namespace_object: Any) -> Bindings:
    """The request variables of a ValidatingAdmissionPolicy on the review's
    object (a ValidatingPolicy on the same request binds the same: the
    review's request, the caller's Namespace), once per review, operation,
    Namespace and context of the resource libraries."""
    lookups = active_lookups()
    key = ("vap", operation, id(namespace_object), id(lookups))
    got = review.memo.get(key)
    if got is None:
        # on DELETE the object is the old one (as admission_data has it)
        deleting = operation == "DELETE"
        data = {
            "object": None if deleting else review.obj,
            "oldObject": review.obj if deleting else None,
            "request": review.request(operation),
            "namespaceObject": namespace_object,
        }
        # the values keep the objects whose identity is in the key
        got = review.memo[key] = (review.bindings(data, lookups), namespace_object, lookups)
    bindings: Bindings = got[0]
    return bindings


def evaluate_vap(
    policy: Mapping[str, Any],
    binding: Mapping[str, Any],
    obj: Mapping[str, Any],
    *,
    operation: str = "CREATE",
    namespace_object: Mapping[str, Any] | None = None,
    each: bool = False,
) -> list[Decision]:
    """A ValidatingAdmissionPolicy through one of its bindings. In a
    :func:`~policykit.k8s.request.session` the policy is read once, and the
    policies evaluated on one object share its review: its conversion to
    CEL, and the variables they declare alike, evaluated once.

    An expression that errors raises :class:`CelEvalError`; with ``each``, it
    is a decision of its own, as in the API server's validator (k8s.io/apiserver
    ``pkg/admission/plugin/policy/validating/validator.go``): under
    ``failurePolicy: Fail`` one whose message is ``error: expression '…'
    resulted in error: …``, under ``Ignore`` none; the other validations are
    evaluated either way."""
    s = current_session()
    if s is None:
        vap, review = _prepare_vap(policy, binding), Review(obj)
    else:
        vap = s.prepared((policy, binding), lambda: _prepare_vap(policy, binding))
        review = s.review(obj)
    if not vap.bound:
        return []
    # an unknown Namespace (None) has the label the API server gives every
    # namespace, for the binding's selector and the policy's alike
    ns_labels = (
        metadata(namespace_object).get("labels") or {} if namespace_object is not None else None
    )
    if vap.narrow is not None and not vap.narrow.matches(obj, review.info, operation, ns_labels):
        return []
    if vap.spec is None:
        raise KeyError("spec")
    if not vap.constraints.matches(obj, review.info, operation, ns_labels):
        return []
    # the request variables a ValidatingPolicy on the same request binds too
    # (the review's request, the caller's Namespace): one Bindings for both
    bindings = _vap_bindings(review, operation, namespace_object)
    if vap.conditions and not conditions_hold(vap.conditions, bindings.plain, vap.failure):
        return []
    scope = bindings.bind(vap.variables)
    if each:
        return [
            Decision(vap.name, vap.rule, vap.actions, message)
            for message in _each_validation(vap.validations, scope, vap.failure)
        ]
    return [
        Decision(vap.name, vap.rule, vap.actions, message)
        for message in failed_validations(vap.validations, scope)
    ]


def _each_validation(
    validations: Sequence[Mapping[str, Any]], scope: Mapping[str, Any] | View, failure: str
) -> list[str]:
    """The message of each validation that is not true, or errs (``error: …``,
    under ``failure`` Fail)."""
    out: list[str] = []
    for v in validations:
        try:
            ok = program(str(v["expression"])).eval(scope) is True
        except CelEvalError as exc:
            if failure != "Ignore":
                out.append(f"error: {error_text(exc, [v])}")
            continue
        if not ok:
            out.append(message_of(v, scope))
    return out


# --- Kyverno ValidatingPolicy ----------------------------------------------------------


_Result = tuple[str, Status, str]
"""An :class:`Outcome`'s rule, status and message (``evaluate_kyverno`` reads
these and makes no :class:`Outcome`, issue 21)."""


def _spec_outcome(
    prepared: _Spec, bindings: Bindings, exceptions: Sequence[Mapping[str, Any]]
) -> _Result:
    """One compiled spec on one request (Kyverno's ``evaluateWithData`` and
    ``handlePolicy``)."""
    rule, failure = prepared.rule, prepared.failure
    if exceptions:
        # the request's shared bindings: the object is converted to CEL once,
        # not again for every exception's conditions
        exempt = exemption(exceptions, bindings.plain, failure)
        if exempt is not None:
            verb = "passed" if exempt.result == "pass" else "skipped"
            message = f"rule is {verb} due to policy exception: {', '.join(exempt.names)}"
            return rule, exempt.result, message  # type: ignore[return-value]
    if prepared.conditions and not conditions_hold(prepared.conditions, bindings.plain, failure):
        return rule, "skip", "matchConditions not met"
    scope = bindings.bind(prepared.variables)
    for v in prepared.validations:
        if program(str(v["expression"])).eval(scope) is not True:
            return rule, "fail", message_of(v, scope)
    return rule, "pass", ""


@dataclass(frozen=True, slots=True)
class _Spec:
    rule: str  # "" for the policy's own spec, else the autogen rule name
    compat: Any  # the spec with every CEL expression as Kyverno compiles it
    outside: tuple[str | None, str | None]  # outside_use without, with a context file
    constraints: Constraints  # its matchConstraints
    variables: Declarations  # its variables, as compiled
    conditions: Sequence[Mapping[str, Any]]  # its matchConditions, as compiled
    failure: str  # its failurePolicy
    validations: Sequence[Mapping[str, Any]]  # as compiled


_PREPARED: dict[int, tuple[Any, tuple[_Spec, ...]]] = {}
_PREPARED_MAX = 256


def _specs(policy: Mapping[str, Any]) -> tuple[_Spec, ...]:
    """The policy's specs, autogen included, each with its compatible CEL and
    its expressions: the work that depends on the policy alone, done once per
    policy rather than once per object (``verify`` of 10k objects, issue 21).
    Remembered by identity and checked by equality with a copy taken then, so
    a policy changed in place is prepared again."""
    hit = _PREPARED.get(id(policy))
    if hit is not None and hit[0] == policy:
        return hit[1]
    specs = []
    for rule, sp in vpol_specs(policy):
        texts = cel_texts(sp)
        outside = (outside_use(texts, backed=False), outside_use(texts, backed=True))
        compat = cel_go_compat(sp)
        specs.append(
            _Spec(
                rule,
                compat,
                outside,
                Constraints(sp.get("matchConstraints") or {}),
                Declarations(compat.get("variables") or []),
                compat.get("matchConditions") or [],
                str(compat.get("failurePolicy") or "Fail"),
                compat.get("validations") or [],
            )
        )
    if len(_PREPARED) >= _PREPARED_MAX:
        _PREPARED.clear()
    _PREPARED[id(policy)] = (copy.deepcopy(policy), tuple(specs))
    return tuple(specs)


def _vpol_bindings(review: Review, ctx: Context, mode: str, ns_object: Any) -> Bindings:
    """The request variables of a ValidatingPolicy in ``mode`` on the review's
    object: in JSON mode the object alone; else :func:`admission_data`, with
    the context's Namespace object when it has one. Bound with the context
    the resource and image libraries read (the context's, else the one in
    force)."""
    obj = review.obj
    lookups = ctx.lookups if ctx.lookups is not None else active_lookups()
    if mode == "JSON":
        return review.bindings({"object": obj}, lookups)
    data = admission_data(obj, ctx, review.request(ctx.operation))
    if ns_object is not None and obj.get("kind") != "Namespace":
        data["namespaceObject"] = ns_object
    return review.bindings(data, lookups)


@dataclass(frozen=True, slots=True)
class _Vpol:
    """A ValidatingPolicy read once."""

    name: str  # as reports give it
    policy: str  # metadata.name
    rule: str  # the policykit rule it enforces
    kind: str
    mode: str
    actions: tuple[str, ...]
    action: str
    specs: tuple[_Spec, ...]


def _prepare_vpol(policy: Mapping[str, Any]) -> _Vpol:
    """:class:`Unsupported` for a kind or evaluation mode policykit does not run."""
    name = policy_name(policy)
    kind = str(policy.get("kind"))
    if kind not in VPOL_KINDS:
        raise Unsupported(f"{kind} {name} (only ValidatingPolicy is evaluated)")
    spec = policy.get("spec") or {}
    mode = (spec.get("evaluation") or {}).get("mode", "Kubernetes")
    if mode not in ("Kubernetes", "JSON"):
        raise Unsupported(f"ValidatingPolicy {name} uses evaluation mode {mode}")
    actions = tuple(spec.get("validationActions") or ["Deny"])
    action = "Enforce" if "Deny" in actions else "Audit"
    meta_name = str(metadata(policy).get("name", ""))
    return _Vpol(name, meta_name, rule_of(policy), kind, mode, actions, action, _specs(policy))


def _namespace(review: Review, ctx: Context) -> tuple[Any, dict[str, Any], dict[str, Bindings]]:
    """What the ValidatingPolicies run on the review's object in ``ctx`` share:
    the namespace the matcher sees (engine.go: nsResolver: the context's
    Namespace object when it has one, else its labels for that namespace) and
    the bindings by evaluation mode; worked out once per review and context."""
    got = review.memo.get(("vpol", id(ctx)))
    if got is None:
        ns = review.namespace
        ns_object = ctx.namespaces.get(ns)
        ns_labels = (
            metadata(ns_object).get("labels") or {}
            if ns_object is not None
            else ctx.namespace_labels.get(ns, {})
        )
        ns_meta = {NAMESPACE_NAME_LABEL: ns, **ns_labels}
        got = review.memo[("vpol", id(ctx))] = (ns_object, ns_meta, {}, ctx)
    return got[0], got[1], got[2]


def _vpol_outcomes(vpol: _Vpol, review: Review, ctx: Context) -> list[Outcome]:
    """:func:`evaluate_vpol` of a prepared policy."""
    name, action = vpol.name, vpol.action
    return [
        Outcome(name, rule, status, message, action)
        for rule, status, message in _vpol_results(vpol, review, ctx)
    ]


def _vpol_results(vpol: _Vpol, review: Review, ctx: Context) -> list[_Result]:
    """:func:`_vpol_outcomes`, each as a :data:`_Result`."""
    name, obj = vpol.name, review.obj
    exceptions = (
        for_policy(ctx.exceptions, vpol.policy, vpol.kind, ctx.now or dt.datetime.now(dt.UTC))
        if ctx.exceptions
        else ()
    )
    ns_object, ns_meta, shared = _namespace(review, ctx)
    out: list[_Result] = []
    for prepared in vpol.specs:
        if vpol.mode != "JSON" and not prepared.constraints.matches(
            obj, review.info, ctx.operation, ns_meta
        ):
            continue
        bindings = shared.get(vpol.mode)
        if bindings is None:
            bindings = shared[vpol.mode] = _vpol_bindings(review, ctx, vpol.mode, ns_object)
        outside = prepared.outside[ctx.lookups is not None]
        if outside is not None:
            raise Unsupported(f"ValidatingPolicy {name} uses {outside}")
        try:
            if ctx.lookups is None:
                out.append(_spec_outcome(prepared, bindings, exceptions))
            else:
                with using_lookups(ctx.lookups):
                    out.append(_spec_outcome(prepared, bindings, exceptions))
        except CelEvalError as exc:
            unknown_library(exc, f"ValidatingPolicy {name}")
            out.append((prepared.rule, "error", exc.message))
    return out or [("", "skip", "")]


def _review(obj: Mapping[str, Any]) -> Review:
    """The object's review: the session's, else a new one."""
    s = current_session()
    return s.review(obj) if s is not None else Review(obj)


def _prepared_vpol(policy: Mapping[str, Any]) -> _Vpol:
    s = current_session()
    return (
        _prepare_vpol(policy) if s is None else s.prepared((policy,), lambda: _prepare_vpol(policy))
    )


def evaluate_vpol(policy: Mapping[str, Any], obj: Mapping[str, Any], ctx: Context) -> list[Outcome]:
    """A ValidatingPolicy (and the specs generated from it) on ``obj``: one
    outcome per spec that matches — ``pass``/``fail`` from its validations,
    ``skip`` (or ``pass``) from an exception or unmet match conditions,
    ``error`` when an expression fails to evaluate — or one ``skip`` when
    none matches (in a session: as for :func:`evaluate_vap`)."""
    return _vpol_outcomes(_prepared_vpol(policy), _review(obj), ctx)


def evaluate_kyverno(
    policy: Mapping[str, Any],
    obj: Mapping[str, Any],
    *,
    operation: str = "CREATE",
    namespace_object: Mapping[str, Any] | None = None,
    exceptions: Sequence[Mapping[str, Any]] = (),
    now: dt.datetime | None = None,
) -> list[Decision]:
    """:func:`evaluate_vpol` as ``verify`` reads it: a :class:`Decision` per
    failing spec; an expression that errors raises :class:`CelEvalError`."""
    review = _review(obj)
    key = ("context", operation, id(exceptions), now, id(namespace_object))
    made = review.memo.get(key)  # one context per object and arguments: shared work
    if made is None:
        ns = review.namespace
        ctx = Context(
            operation=operation,
            exceptions=exceptions,
            now=now,
            namespaces={ns: namespace_object} if ns and namespace_object is not None else {},
        )
        made = review.memo[key] = (ctx, exceptions, namespace_object)
    ctx = made[0]
    vpol = _prepared_vpol(policy)
    out: list[Decision] = []
    for _, status, message in _vpol_results(vpol, review, ctx):
        if status == "error":
            raise CelEvalError(message)
        if status == "fail":
            out.append(Decision(vpol.policy, vpol.rule, vpol.actions, message))
    return out
