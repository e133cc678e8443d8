"""Classic ``validate`` rules (pattern, anyPattern, deny, foreach) with
``context``, ``preconditions`` and ``{{ }}`` variables, as Kyverno's
``pkg/engine/handlers/validation/validate_resource.go`` runs them
(``validate``, ``validateForEach``, ``validateElements``, ``validateDeny``,
``validatePatterns``, ``buildErrorMessage``), behind ``pkg/engine/engine.go``
(rule context, then preconditions), with the variables of
``pkg/engine/variables/vars.go`` and the JSON context the Kyverno CLI builds
(``cmd/cli/kubectl-kyverno/processor/policy_processor.go``,
``variables/variables.go``, ``store/contextloader.go``)."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from policykit.existing.kyverno_classic import conditions as cond
from policykit.existing.kyverno_classic import gotypes as go
from policykit.existing.kyverno_classic.jmespath_fns import NotFound, QueryError, search
from policykit.existing.kyverno_classic.pattern import match_pattern
from policykit.k8s.errors import Unsupported

# regex/vars.go
RE_VARIABLES = re.compile(r"(^|[^\\])(\{\{(?:\{[^{}]*\}|[^{}])*\}\})")
RE_VARIABLE_INIT = re.compile(r"^\{\{(\{[^{}]*\}|[^{}])*\}\}")
RE_REFERENCES = re.compile(r"^\$\(.[^ ]*\)|[^\\]\$\(.[^ ]*\)")

Response = tuple[str, str] | None  # (pass|fail|skip|error, message); None: no response


class SubstitutionError(Exception):
    pass


@dataclass
class Env:
    """The JSON context and what the policy context holds besides it."""

    data: dict[str, Any]
    rule: Mapping[str, Any]
    rule_values: Mapping[str, Any]
    delete: bool = False
    element: Any = None  # the scoped foreach element patterns validate
    failed: dict[str, str] = field(default_factory=dict)
    now: Callable[[], dt.datetime] | None = None

    def fork(self) -> Env:
        return replace(self, data=dict(self.data), failed=dict(self.failed))


# --- the JSON context ---------------------------------------------------------------


def add_variable(data: dict[str, Any], key: str, value: Any) -> None:
    """context.AddVariable: the key split on dots (csv-style quoting), merged in."""
    fields = next(csv.reader([key], delimiter="."))
    node: dict[str, Any] = {}
    cur = node
    for f in fields[:-1]:
        cur[f] = {}
        cur = cur[f]
    cur[fields[-1]] = value
    _merge(data, node)


def _merge(dst: dict[str, Any], src: Mapping[str, Any]) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            dst[k] = dict(dst[k])
            _merge(dst[k], v)
        else:
            dst[k] = copy.deepcopy(v)


def query(env: Env, expression: str) -> Any:
    expression = expression.strip()
    if re.search(r"(?<![\w.$@])images\b", expression):
        raise Unsupported("the images variable (image details of the resource)")
    for name, why in env.failed.items():
        if re.search(rf"(?<![\w.]){re.escape(name)}\b", expression):
            raise QueryError(why)
    return search(expression, env.data, env.now)


# --- substitution (variables/vars.go) ------------------------------------------------


def _trim(v: str) -> tuple[str, bool]:
    variable = v.replace("{{", "").replace("}}", "").strip()
    if variable.startswith("-"):
        return variable[1:].strip(), True
    return variable, False


def _substitute_string(env: Env, value: str) -> Any:
    found = [m.group(0) for m in RE_VARIABLES.finditer(value)]
    while found:
        original = value
        shallow = False
        for v in found:
            initial = RE_VARIABLE_INIT.match(v) is not None
            old = v
            if not initial:
                v = v[1:]
            variable, shallow = _trim(v)
            if variable == "@":
                raise Unsupported("the {{@}} variable")
            if env.delete:
                variable = variable.replace("request.object", "request.oldObject")
            try:
                result = query(env, variable)
            except NotFound as exc:
                raise SubstitutionError(f"failed to resolve {variable}: {exc}") from None
            except QueryError as exc:
                raise SubstitutionError(f"failed to resolve {variable}: {exc}") from None
            if original == v:
                return result
            prefix = "" if initial else old[0]
            if shallow and result is not None:
                result = str(result).replace("{{", "\\{{")
            text = result if isinstance(result, str) else go.marshal(result)
            value = value.replace(prefix + v, prefix + text, 1)
        found = [] if shallow else [m.group(0) for m in RE_VARIABLES.finditer(value)]
    return value.replace("\\{{", "{{")


def substitute(env: Env, document: Any) -> Any:
    """SubstituteAll over keys and leaves."""
    if isinstance(document, dict):
        out: dict[str, Any] = {}
        for k, v in document.items():
            nk = _substitute_string(env, k) if "{{" in k else k
            out[nk if isinstance(nk, str) else go.marshal(nk)] = substitute(env, v)
        return out
    if isinstance(document, list):
        return [substitute(env, v) for v in document]
    if isinstance(document, str):
        if RE_REFERENCES.search(document):
            raise Unsupported("$(...) references in patterns")
        if "{{" in document:
            return _substitute_string(env, document)
    return document


# --- context entries (pkg/engine/context/loaders, CLI store/contextloader.go) ----------


def load_context(env: Env, entries: Any) -> None:
    """The CLI's loader: the rule's values from the values file first, then
    each entry; configMap and apiCall entries take their value from the
    values file (the CLI does not load them), variables are computed."""
    for key, value in env.rule_values.items():
        add_variable(env.data, str(key), value)
    for entry in entries or []:
        name = str(entry.get("name", ""))
        if entry.get("variable") is not None:
            try:
                env.data[name] = _load_variable(env, entry["variable"], name)
                env.failed.pop(name, None)
            except (SubstitutionError, QueryError, NotFound) as exc:
                env.failed[name] = str(exc)
        elif entry.get("imageRegistry") is not None:
            raise Unsupported(f"the imageRegistry context entry {name!r}")
        elif entry.get("globalReference") is not None:
            raise Unsupported(f"the globalReference context entry {name!r}")
        elif entry.get("configMap") is None and entry.get("apiCall") is None:
            raise SubstitutionError(
                f"missing ConfigMap|APICall|ImageRegistry|Variable in context entry {name}"
            )


def _load_variable(env: Env, var: Mapping[str, Any], name: str) -> Any:
    """loaders/variable.go loadVariable."""
    path = ""
    if var.get("jmesPath"):
        p = substitute(env, var["jmesPath"])
        if not isinstance(p, str):
            raise SubstitutionError(f"jmespath value must be a string {name}")
        path = p
    default = substitute(env, var["default"]) if var.get("default") is not None else None
    output = default
    if var.get("value") is not None:
        value = substitute(env, var["value"])
        if path:
            try:
                output = search(path, value, env.now)
            except (NotFound, QueryError) as exc:
                if default is None:
                    raise SubstitutionError(
                        f"failed to apply jmespath {path} to variable {value}: {exc}"
                    ) from None
        else:
            output = value
    elif path:
        try:
            got = query(env, path)
            if got is not None:
                output = got
        except (NotFound, QueryError) as exc:
            if default is None:
                raise SubstitutionError(f"failed to apply jmespath {path}: {exc}") from None
    if output is None:
        raise SubstitutionError(
            f"failed to add context entry for variable {name} since it evaluated to nil"
        )
    return output


# --- conditions (variables/evaluate.go) --------------------------------------------------


def _condition(env: Env, c: Mapping[str, Any]) -> tuple[bool, str]:
    try:
        key = substitute(env, c.get("key"))
    except SubstitutionError as exc:
        raise SubstitutionError(f"failed to substitute variables in condition key: {exc}") from None
    try:
        value = substitute(env, c.get("value"))
    except SubstitutionError as exc:
        raise SubstitutionError(
            f"failed to substitute variables in condition value: {exc}"
        ) from None
    try:
        fn = cond.handler(str(c.get("operator", "")))
    except cond.UnknownOperator:
        raise SubstitutionError(
            f"failed to create handler for condition operator {c.get('operator')!r}"
        ) from None
    return fn(key, value), str(c.get("message") or "")


def _join(parts: list[str], sep: str) -> str:
    return sep.join(p for p in parts if p)


def evaluate_conditions(env: Env, conditions: Any) -> tuple[bool, str]:
    """EvaluateConditions: ``{any, all}`` or the legacy list (all must hold)."""
    if conditions is None:
        return True, ""
    if isinstance(conditions, list):
        blocks = conditions and all(
            isinstance(c, dict) and ("any" in c or "all" in c) for c in conditions
        )
        check = _any_all if blocks else _condition  # any/all blocks, else plain conditions
        trues: list[str] = []
        for c in conditions:
            ok, msg = check(env, c)
            if not ok:
                return False, msg
            trues.append(msg)
        return True, _join(trues, ";")
    if isinstance(conditions, dict):
        return _any_all(env, conditions)
    raise SubstitutionError("invalid condition")


def _any_all(env: Env, block: Mapping[str, Any]) -> tuple[bool, str]:
    any_ok = all_ok = True
    falses: list[str] = []
    trues: list[str] = []
    if block.get("any") is not None:
        any_ok = False
        for c in block["any"]:
            ok, msg = _condition(env, c)
            if ok:
                any_ok = True
                trues.append(msg)
                break
            falses.append(msg)
    for c in block.get("all") or []:
        ok, msg = _condition(env, c)
        if not ok:
            all_ok = False
            falses.append(msg)
            break
        trues.append(msg)
    if any_ok and all_ok:
        return True, _join(trues, "; ")
    return False, _join(falses, "; ")


# --- the validator -------------------------------------------------------------------------


def _message(env: Env) -> str:
    return str((env.rule.get("validate") or {}).get("message") or "")


def _name(env: Env) -> str:
    return str(env.rule.get("name", ""))


def _build_error(env: Env, err: str, path: str) -> str:
    msg = _message(env)
    name = _name(env)
    if not msg:
        if path:
            return f"validation error: rule {name} failed at path {path}"
        return f"validation error: rule {name} execution error: {err}"
    try:
        text = substitute(env, msg)
    except SubstitutionError:
        return (
            f"validation error: variables substitution error in rule {name} execution error: {err}"
        )
    text = text if isinstance(text, str) else go.marshal(text)
    if not text.endswith("."):
        text += "."
    if path:
        return f"validation error: {text} rule {name} failed at path {path}"
    return f"validation error: {text} rule {name} execution error: {err}"


def _any_pattern_error(env: Env, errors: list[str]) -> str:
    joined = " ".join(errors)
    msg = _message(env)
    if not msg:
        return f"validation error: {joined}"
    try:
        text = substitute(env, msg)
    except SubstitutionError:
        return (
            f"validation error: variables substitution error in rule {_name(env)} "
            f"execution error: {joined}"
        )
    text = text if isinstance(text, str) else go.marshal(text)
    if text.endswith("."):
        return f"validation error: {text} {joined}"
    return f"validation error: {text}. {joined}"


def _validate_patterns(env: Env, resource: Any, spec: Mapping[str, Any]) -> Response:
    name = _name(env)
    if spec.get("pattern") is not None:
        err = match_pattern(resource, spec["pattern"])
        if err is None:
            return "pass", f"validation rule '{name}' passed."
        if err.skip:
            return "skip", err.message
        if not err.path:
            return "error", _build_error(env, err.message, "")
        return "fail", _build_error(env, err.message, err.path)
    patterns = spec.get("anyPattern")
    if not isinstance(patterns, list):
        return "error", "failed to deserialize anyPattern, expected type array"
    failed: list[str] = []
    skipped: list[str] = []
    for i, p in enumerate(patterns):
        err = match_pattern(resource, p)
        if err is None:
            return "pass", f"validation rule '{name}' anyPattern[{i}] passed."
        if err.skip:
            skipped.append(f"rule {name}[{i}] skipped: {err.message}")
        elif not err.path:
            failed.append(f"rule {name}[{i}] failed: {err.message}")
        else:
            failed.append(f"rule {name}[{i}] failed at path {err.path}")
    if skipped and not failed:
        return "skip", " ".join(skipped)
    if failed:
        return "fail", _any_pattern_error(env, failed)
    return "pass", _message(env)


def _deny_message(env: Env, msg: str) -> str:
    rule_msg = _message(env)
    if not rule_msg and not msg:
        return f"validation error: rule {_name(env)} failed"
    try:
        raw = substitute(env, _join([rule_msg, msg], "; "))
    except SubstitutionError:
        return msg
    if isinstance(raw, str):
        return raw
    return "the produced message didn't resolve to a string, check your policy definition."


def validate(env: Env, spec: Mapping[str, Any], nesting: int, entries: Any) -> Response:
    """validator.validate for the rule (nesting 0) or a foreach entry."""
    try:
        load_context(env, entries)
    except SubstitutionError as exc:
        return "error", f"failed to load context: {exc}"
    try:
        ok, msg = evaluate_conditions(env, spec.get("preconditions"))
    except (SubstitutionError, QueryError, NotFound) as exc:
        return "error", f"failed to evaluate preconditions: {exc}"
    if not ok:
        return "skip", _join(["preconditions not met", msg], "; ")
    if spec.get("deny") is not None:
        try:
            denied, msg = evaluate_conditions(env, (spec["deny"] or {}).get("conditions"))
        except (SubstitutionError, QueryError, NotFound) as exc:
            return "error", f"failed to check deny conditions: {exc}"
        if denied:
            return "fail", _deny_message(env, msg)
        return "pass", f"validation rule '{_name(env)}' passed."
    if spec.get("pattern") is not None or spec.get("anyPattern") is not None:
        try:
            subst = {
                k: substitute(env, spec[k])
                for k in ("pattern", "anyPattern")
                if spec.get(k) is not None
            }
        except SubstitutionError as exc:
            return "error", f"variable substitution failed: {exc}"
        if isinstance(env.element, dict) and env.element:
            return _validate_patterns(env, env.element, subst)
        if env.delete:
            return None
        return _validate_patterns(env, (env.data.get("request") or {}).get("object"), subst)
    if spec.get("foreach") is not None:
        return _validate_foreach(env, spec["foreach"], nesting)
    return None


def _evaluate_list(env: Env, expression: str) -> list[Any]:
    got = query(env, str(expression))
    return got if isinstance(got, list) else [got]


def _validate_foreach(env: Env, foreach: list[Mapping[str, Any]], nesting: int) -> Response:
    applied = 0
    list_error = ""
    for fe in foreach:
        try:
            elements = _evaluate_list(env, str(fe.get("list", "")))
        except NotFound:
            continue  # "Unknown key": the list is absent
        except QueryError as exc:
            if "Unknown key" in str(exc):
                continue
            list_error = str(exc)
            continue
        resp, count = _validate_elements(env, fe, elements, nesting)
        if resp is None or resp[0] != "pass":
            return resp
        applied += count
    if applied == 0:
        if list_error:
            return "error", f"failed to evaluate list: {list_error}"
        return None
    return "pass", "rule passed"


def _validate_elements(
    env: Env, fe: Mapping[str, Any], elements: list[Any], nesting: int
) -> tuple[Response, int]:
    applied = 0
    scope = fe.get("elementScope")
    for index, element in enumerate(elements):
        if element is None:
            continue
        child = env.fork()
        child.data.update(
            {
                "element": element,
                f"element{nesting}": element,
                "elementIndex": index,
                f"elementIndex{nesting}": index,
            }
        )
        scoped = isinstance(element, dict)
        if scope is not None:
            if scope and not isinstance(element, dict):
                return (
                    "error",
                    "failed to process foreach: cannot use elementScope=true foreach rules for "
                    "elements that are not maps",
                ), applied
            scoped = bool(scope)
        if scoped:
            child.element = element
        spec = {
            "preconditions": fe.get("preconditions"),
            "pattern": fe.get("pattern"),
            "anyPattern": fe.get("anyPattern"),
            "deny": fe.get("deny"),
            "foreach": fe.get("foreach"),
        }
        r = validate(child, spec, nesting + 1, fe.get("context"))
        if r is None or r[0] == "skip":
            continue
        if r[0] != "pass":
            if r[0] == "error" and "failed to evaluate preconditions" in r[1]:
                continue
            return (r[0], f"validation failure: {r[1]}"), applied
        applied += 1
    return ("pass", ""), applied
