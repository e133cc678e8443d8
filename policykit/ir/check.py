"""Static checks of a pack: scopes, parameters, regexes, operand sorts.

Run when a pack is defined (DSL) and when one is read from IR JSON, so a
mistake is reported with the rule id and source line before anything runs.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from policykit.errors import DefinitionError, ParameterError, RegexDialectError
from policykit.ir.names import RESERVED_VARS
from policykit.ir.nodes import (
    ARITH_OPS,
    COMPARE_OPS,
    OBJECT_ROOT,
    STR_OPS,
    Arith,
    Compare,
    Count,
    Filter,
    Literal,
    Matches,
    Node,
    Param,
    Path,
    Pred,
    Quantifier,
    StrOp,
    Sum,
    Value,
)
from policykit.ir.regex import check_portable
from policykit.ir.rule import (
    PACK_NAME_RE,
    PARAM_NAME_RE,
    RESERVED_PACK_NAMES,
    SEMVER_RE,
    VAR_NAME_RE,
    Pack,
    Rule,
)

_RESERVED_VARS = RESERVED_VARS


def _check_node(rule: Rule, node: Node, scope: frozenset[str], params: Mapping[str, Any]) -> None:
    def fail(msg: str, hint: str = "") -> None:
        raise DefinitionError(msg, rule_id=rule.id, loc=rule.loc, hint=hint)

    if isinstance(node, Path):
        if node.root != OBJECT_ROOT and node.root not in scope:
            fail(f"variable {node.root!r} is used outside the any/all/count/sum that binds it")
        for s in node.segments:
            if (
                isinstance(s, bool)
                or not isinstance(s, (str, int))
                or (isinstance(s, int) and s < 0)
            ):
                fail(f"path segment {s!r} must be a key or a non-negative index")
        return
    if isinstance(node, Literal):
        v = node.value
        items = v if isinstance(v, tuple) else (v,)
        for x in items:
            if x is not None and not isinstance(x, (str, int, float, bool)):
                fail(
                    f"literal {x!r} is not a scalar",
                    hint="literals are strings, numbers, booleans, null or flat lists of those",
                )
            if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
                fail("NaN and infinity are not JSON values")
        return
    if isinstance(node, Param):
        if node.name not in params:
            fail(f"unknown parameter {node.name!r}", hint="declare it in the pack's params")
        return
    if isinstance(node, Compare) and node.op not in COMPARE_OPS:
        fail(f"unknown comparison {node.op!r}")
    if isinstance(node, StrOp) and node.op not in STR_OPS:
        fail(f"unknown string operation {node.op!r}")
    if isinstance(node, Arith) and node.op not in ARITH_OPS:
        fail(f"unknown arithmetic operator {node.op!r}")
    if isinstance(node, Matches):
        _check_pattern(rule, node, params)
    if isinstance(node, (Quantifier, Count, Sum, Filter)):
        if not VAR_NAME_RE.fullmatch(node.var) or node.var in _RESERVED_VARS or "__" in node.var:
            fail(f"bound variable name {node.var!r} is reserved or not a simple lower-case name")
        if node.var in scope:
            fail(f"variable {node.var!r} is already bound by an enclosing any/all/count/sum")
        _check_node(rule, node.collection, scope, params)
        inner = node.term if isinstance(node, Sum) else node.body
        _check_sort(rule, inner, Value if isinstance(node, Sum) else Pred)
        _check_node(rule, inner, scope | {node.var}, params)
        return
    for child in node.children():
        _check_node(rule, child, scope, params)


def _check_sort(rule: Rule, node: Node, sort: type[Node]) -> None:
    if not isinstance(node, sort):
        what = "a condition" if sort is Pred else "a value"
        raise DefinitionError(
            f"expected {what}, got {type(node).__name__}", rule_id=rule.id, loc=rule.loc
        )


def _check_pattern(rule: Rule, node: Matches, params: Mapping[str, Any]) -> None:
    pattern = node.pattern
    values: list[Any] = []
    if isinstance(pattern, Literal):
        values = [pattern.value]
    elif isinstance(pattern, Param):
        values = [params.get(pattern.name)]
    else:
        raise DefinitionError(
            "a regex must be a literal string or a parameter", rule_id=rule.id, loc=rule.loc
        )
    for v in values:
        if not isinstance(v, str):
            raise DefinitionError(f"regex {v!r} is not a string", rule_id=rule.id, loc=rule.loc)
        try:
            check_portable(v)
        except RegexDialectError as exc:
            raise RegexDialectError(
                exc.message, rule_id=rule.id, loc=rule.loc, hint=exc.hint
            ) from None


def check_rule(rule: Rule, params: Mapping[str, Any]) -> None:
    """Validate one rule against the parameter values it will run with."""
    rule.validate()
    scope: frozenset[str] = frozenset()
    _check_sort(rule, rule.condition, Pred)
    if rule.each is not None:
        e = rule.each
        if not VAR_NAME_RE.fullmatch(e.var) or e.var in _RESERVED_VARS or "__" in e.var:
            raise DefinitionError(
                f"each variable {e.var!r} is reserved or not a simple lower-case name",
                rule_id=rule.id,
                loc=rule.loc,
            )
        _check_node(rule, e.collection, scope, params)
        scope = frozenset({e.var})
    _check_node(rule, rule.condition, scope, params)
    for part in rule.message.parts:
        if not isinstance(part, str):
            _check_node(rule, part, scope, params)


def schema_problem(schema: Mapping[str, Any]) -> str | None:
    """Why ``schema`` is not a valid draft 2020-12 schema, or None.

    Checked once per distinct schema (by content): ``check_schema`` was most of
    an engine's construction, paid again for every pack of every engine."""
    if not _plain_json(schema):  # tuples, mappings that are not dicts ...: checked every time
        return _schema_problem(dict(schema))
    if _plain_schema(schema):  # certainly well-formed: no jsonschema import (start-up)
        return None
    # the key keeps the order of keys, so the first error reported is the same
    return _cached_schema_problem(json.dumps(schema, separators=(",", ":")))


def _plain_json(v: Any) -> bool:
    """Whether ``v`` survives a JSON round trip unchanged (types included)."""
    t = type(v)
    if t is dict:
        return all(type(k) is str and _plain_json(x) for k, x in v.items())
    if t is list:
        return all(_plain_json(x) for x in v)
    if t is float:
        return v == v and v not in (float("inf"), float("-inf"))
    return v is None or t is str or t is int or t is bool


@functools.lru_cache(maxsize=4096)
def _cached_schema_problem(key: str) -> str | None:
    return _schema_problem(json.loads(key))


def _schema_problem(schema: dict[str, Any]) -> str | None:
    import jsonschema  # when a pack is checked, not at start-up

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return str(exc.message)
    return None


# -- a light path for the plain schemas parameters use (issue 21, start-up) -----
#
# Both functions are one-sided: True means jsonschema would agree (the schema is
# well-formed for Draft202012Validator.check_schema; the value has no
# validation error), False means "not known here": the caller asks jsonschema,
# which also words the error. The keywords and their meta-schema constraints
# follow https://json-schema.org/draft/2020-12/schema (meta/validation,
# meta/applicator, meta/meta-data) and the type checks jsonschema's
# _types.draft202012_type_checker; tests/test_schema_lite.py holds both
# functions to jsonschema on generated schemas and values.

_ANNOTATIONS = {"title": str, "description": str, "$comment": str}
_IGNORED = {"default", "examples", "deprecated", "readOnly", "writeOnly"}
_COUNTS = ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties")
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"
_TYPES = {"array", "boolean", "integer", "null", "number", "object", "string"}


def _is_count(v: Any) -> bool:
    return type(v) is int and v >= 0


def _is_number(v: Any) -> bool:
    return type(v) is int or (type(v) is float and v == v and abs(v) != float("inf"))


def _plain_schema(schema: Any) -> bool:
    """Whether ``schema`` (plain JSON) is certainly a valid draft 2020-12 schema
    made of the keywords this module knows."""
    if type(schema) is bool:
        return True
    if type(schema) is not dict:
        return False
    for k, v in schema.items():
        if k == "type":
            names = v if type(v) is list else [v]
            ok = bool(names) and all(type(n) is str and n in _TYPES for n in names)
            if not ok or len(set(names)) != len(names):
                return False
        elif k in ("items", "additionalProperties"):
            if not _plain_schema(v):
                return False
        elif k == "properties":
            if type(v) is not dict or not all(_plain_schema(x) for x in v.values()):
                return False
        elif k == "required":
            if type(v) is not list or not all(type(x) is str for x in v):
                return False
            if len(set(v)) != len(v):
                return False
        elif k == "enum":
            if type(v) is not list:
                return False
        elif k in _COUNTS:
            if not _is_count(v):
                return False
        elif k in _BOUNDS:
            if not _is_number(v):
                return False
        elif k in _ANNOTATIONS:
            if type(v) is not str:
                return False
        elif k == "$schema":
            if v != _SCHEMA_URI:
                return False
        elif k == "$id":  # meta/core: a string matching ^[^#]*#?$ (no fragment)
            if type(v) is not str or "#" in v[:-1]:
                return False
        elif k not in _IGNORED:
            return False
    return True


def _type_ok(name: str, v: Any) -> bool:
    t = type(v)
    if name == "string":
        return t is str
    if name == "array":
        return t is list
    if name == "object":
        return t is dict
    if name == "boolean":
        return t is bool
    if name == "null":
        return v is None
    if name == "integer":
        return t is int
    return _is_number(v)  # "number"


def _surely_valid(schema: Any, v: Any) -> bool:
    """Whether plain JSON ``v`` certainly has no error under ``schema``, a
    schema :func:`_plain_schema` accepts."""
    if schema is True:
        return True
    if type(schema) is not dict:
        return False
    t = schema.get("type")
    if t is not None and not any(_type_ok(n, v) for n in (t if type(t) is list else [t])):
        return False
    if "enum" in schema and not (type(v) is str and v in schema["enum"]):
        return False  # strings only: jsonschema's equal() has its own rules for the rest
    tv = type(v)
    if tv is list:
        if "minItems" in schema and len(v) < schema["minItems"]:
            return False
        if "maxItems" in schema and len(v) > schema["maxItems"]:
            return False
        if "items" in schema and not all(_surely_valid(schema["items"], x) for x in v):
            return False
    elif tv is str:
        if "minLength" in schema and len(v) < schema["minLength"]:
            return False
        if "maxLength" in schema and len(v) > schema["maxLength"]:
            return False
    elif tv is dict:
        return _object_ok(schema, v)
    elif _is_number(v):
        return _bounds_ok(schema, v)
    elif tv is float:
        return not any(b in schema for b in _BOUNDS)  # NaN, infinity: ask jsonschema
    return True


def _bounds_ok(schema: dict[str, Any], v: Any) -> bool:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    xlo, xhi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    return (
        (lo is None or v >= lo)
        and (hi is None or v <= hi)
        and (xlo is None or v > xlo)
        and (xhi is None or v < xhi)
    )


def _object_ok(schema: dict[str, Any], v: dict[str, Any]) -> bool:
    if "minProperties" in schema and len(v) < schema["minProperties"]:
        return False
    if "maxProperties" in schema and len(v) > schema["maxProperties"]:
        return False
    if any(k not in v for k in schema.get("required", ())):
        return False
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    return all(_surely_valid(props.get(k, extra), x) for k, x in v.items())


def surely_valid(schema: Any, value: Any) -> bool:
    """Whether ``value`` certainly validates against draft 2020-12 ``schema``
    without importing jsonschema (False: not known here; ask jsonschema, which
    also words the error). The configuration file and parameter values."""
    return _plain_json(value) and _plain_schema(schema) and _surely_valid(schema, value)


def check_params(pack: Pack, values: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``values`` over the pack defaults and validate against its schema."""
    unknown = sorted(set(values) - {p.name for p in pack.params})
    if unknown:
        raise ParameterError(
            f"pack {pack.name}: unknown parameter(s) {', '.join(unknown)}",
            hint="known: " + (", ".join(p.name for p in pack.params) or "none"),
            pack=pack.name,
            param=unknown[0],
        )
    merged = pack.defaults() | dict(values)
    schema = pack.param_schema()
    if surely_valid(schema, merged):
        return merged  # jsonschema (~130 ms to import) only to explain a refusal
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(merged), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = ".".join(str(x) for x in e.absolute_path) or "(root)"
        name = str(e.absolute_path[0]) if e.absolute_path else None
        raise ParameterError(
            f"pack {pack.name}: parameter {where}: {e.message}", pack=pack.name, param=name
        )
    return merged


def check_pack(pack: Pack, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Validate a whole pack; returns the effective parameter values."""
    if not PACK_NAME_RE.fullmatch(pack.name):
        raise DefinitionError(
            f"pack name {pack.name!r} must be lower case letters, digits and underscores"
        )
    if pack.name in RESERVED_PACK_NAMES:
        raise DefinitionError(
            f"pack name {pack.name!r} is reserved: the OPA bundle uses it beside the packs",
            hint=f"reserved: {', '.join(sorted(RESERVED_PACK_NAMES))}",
        )
    if not SEMVER_RE.fullmatch(pack.version):
        raise DefinitionError(f"pack {pack.name}: version {pack.version!r} is not semver")
    for p in pack.params:
        if not PARAM_NAME_RE.fullmatch(p.name):
            raise DefinitionError(f"pack {pack.name}: parameter name {p.name!r} is not valid")
        problem = schema_problem(p.schema)
        if problem is not None:
            raise DefinitionError(
                f"pack {pack.name}: parameter {p.name}: invalid schema: {problem}"
            )
    effective = check_params(pack, values or {})
    seen: dict[str, Rule] = {}
    for r in pack.rules:
        if r.id in seen:
            raise DefinitionError(f"duplicate rule id in pack {pack.name}", rule_id=r.id, loc=r.loc)
        seen[r.id] = r
        check_rule(r, effective)
    return effective
