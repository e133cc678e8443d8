"""A local CEL runtime on cel-expr-python (Google's cel-cpp) with the variables
and library functions Kubernetes (ValidatingAdmissionPolicy) and Kyverno
(ValidatingPolicy) provide, and the CEL engine for ``policykit check``.

What cel-cpp lacks and Kubernetes adds is provided here as host functions with
Kubernetes' documented semantics (each tested in tests/test_cel_engine.py):

* quantity library: ``quantity(s)``, ``isQuantity(s)``, ``q.asApproximateFloat()``,
  ``q.asInteger()``, ``q.isInteger()``, ``q.compareTo(q2)``, ``q.sign()``;
* lists library: ``l.sum()`` over numbers.

Evaluation errors come back from cel-cpp as values, never exceptions; they are
turned into :class:`CelEvalError` here, so a caller cannot mistake one for a
verdict.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import lru_cache
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_bindings, ext_optional, ext_strings

from policykit.engines import CEL_LOADED_AFTER_REGOPY, k8s_quantity
from policykit.engines.rego import EngineUnavailable
from policykit.errors import PolicykitError
from policykit.ir.check import check_pack
from policykit.ir.rule import Pack
from policykit.model import Document, Finding, findings_of
from policykit.targets.cel.compiler import CelRule, compile_pack

VARIABLES = ("object", "oldObject", "request", "params", "namespaceObject", "variables")
"""What Kubernetes and Kyverno bind in admission expressions."""

_QTAG = "__k8s_quantity__"


class CelEvalError(PolicykitError):
    """A CEL expression failed to compile or evaluate."""

    code = "PK006"
    per_document = True


def _q(v: Mapping[str, Any]) -> k8s_quantity.Quantity:
    q = k8s_quantity.parse(str(v[_QTAG]))
    if q is None:  # only quantity() makes these maps, and it checks
        raise ValueError("not a quantity")
    return q


def _quantity(s: str) -> dict[str, str]:
    if k8s_quantity.parse(s) is None:
        raise ValueError(f"quantities must match the regular expression: {s!r}")
    return {_QTAG: s}


def _as_integer(v: Mapping[str, Any]) -> int:
    q = _q(v)
    if not q.is_integer() or abs(q.exact) > 2**63 - 1:
        raise ValueError("cannot convert value to integer")
    return int(q.exact)


def _sum(values: Sequence[Any]) -> Any:
    if all(type(x) is int for x in values):
        return sum(values)
    return float(sum(float(x) for x in values))


def _fn(name: str, ret: Any, params: list[Any], impl: Any, *, member: bool = True) -> Any:
    """One host function with one overload (ids are ``<name>_<arity>``)."""
    overload = cel.Overload(
        f"{name}_{len(params)}",
        return_type=ret,
        parameters=params,
        is_member=member,
        impl=impl,
    )
    return cel.FunctionDecl(name, [overload])


@dataclass(frozen=True, slots=True)
class Lookups:
    """What Kyverno's ``resource.Get``/``resource.List`` and ``image.GetMetadata``
    read offline: the objects and image data of a kyverno-test's ``context:``
    file (the CLI's fake context provider, kyverno/kyverno
    ``pkg/cel/libs/fake_context.go``)."""

    resources: Sequence[Mapping[str, Any]] = ()
    images: Mapping[str, Mapping[str, Any]] = dataclass_field(default_factory=dict)
    # an object's resource (plural) name, from the kind table and CRDs of the
    # caller (policykit.k8s.kinds.for_object); the engine imports no kind table
    plural: Callable[[Mapping[str, Any]], str | None] = lambda obj: None


_LOOKUPS: ContextVar[Lookups | None] = ContextVar("policykit_cel_lookups", default=None)


@contextmanager
def using_lookups(lookups: Lookups | None) -> Iterator[None]:
    """Evaluate with ``lookups`` behind the resource and image libraries."""
    token = _LOOKUPS.set(lookups)
    try:
        yield
    finally:
        _LOOKUPS.reset(token)


def active_lookups() -> Lookups | None:
    """The context the resource and image libraries read now (:func:`using_lookups`)."""
    return _LOOKUPS.get()


def _lookups(what: str) -> Lookups:
    got = _LOOKUPS.get()
    if got is None:
        raise ValueError(f"{what} has no context to read here")
    return got


def _plural(obj: Mapping[str, Any]) -> str:
    known = _lookups("resource.Get").plural(obj)
    return known if known else str(obj.get("kind", "")).lower() + "s"


def _in(obj: Mapping[str, Any], api_version: str, resource: str, namespace: str) -> bool:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    return (
        obj.get("apiVersion") == api_version
        and _plural(obj) == resource
        and str(meta.get("namespace") or "") == namespace
    )


def _resource_get(api_version: str, resource: str, namespace: str, name: str) -> Any:
    for obj in _lookups("resource.Get").resources:
        if (
            _in(obj, api_version, resource, namespace)
            and (obj.get("metadata") or {}).get("name") == name
        ):
            return obj
    raise ValueError(f'{resource} "{name}" not found')


def _resource_list(api_version: str, resource: str, namespace: str) -> Any:
    items = [
        o for o in _lookups("resource.List").resources if _in(o, api_version, resource, namespace)
    ]
    if not items and not any(
        o.get("apiVersion") == api_version and _plural(o) == resource
        for o in _lookups("resource.List").resources
    ):
        raise ValueError(f"{resource} resource not found")
    return {"apiVersion": "v1", "kind": "List", "items": items}


def _image_metadata(image: str) -> Any:
    found = _lookups("image.GetMetadata").images.get(image)
    if found is None:
        raise ValueError(f"image data for {image} not found in the context")
    return found


def _functions() -> list[Any]:
    """Kubernetes' quantity library and list ``sum()``; a quantity is carried
    as a tagged map (cel-expr-python has no opaque host types)."""
    t = cel.Type
    return [
        _fn("quantity", t.MAP, [t.STRING], _quantity, member=False),
        _fn(
            "isQuantity",
            t.BOOL,
            [t.STRING],
            lambda s: k8s_quantity.parse(s) is not None,
            member=False,
        ),
        _fn("asApproximateFloat", t.DOUBLE, [t.MAP], lambda v: _q(v).approximate_float()),
        _fn("asInteger", t.INT, [t.MAP], _as_integer),
        _fn(
            "isInteger",
            t.BOOL,
            [t.MAP],
            lambda v: _q(v).is_integer() and abs(_q(v).exact) <= 2**63 - 1,
        ),
        _fn("compareTo", t.INT, [t.MAP, t.MAP], lambda a, b: _q(a).compare(_q(b))),
        _fn("sign", t.INT, [t.MAP], lambda v: (_q(v).unscaled > 0) - (_q(v).unscaled < 0)),
        _fn("sum", t.DYN, [t.List(t.DYN)], _sum),
        # Kyverno's resource and image libraries, read from a test's context file
        _fn("resource.Get", t.DYN, [t.STRING] * 4, _resource_get, member=False),
        _fn("resource.List", t.DYN, [t.STRING] * 3, _resource_list, member=False),
        _fn("image.GetMetadata", t.DYN, [t.STRING], _image_metadata, member=False),
    ]


@lru_cache(maxsize=1)
def environment() -> Any:
    """The shared CEL environment (variables are dynamically typed, as in
    ValidatingAdmissionPolicy and Kyverno)."""
    if CEL_LOADED_AFTER_REGOPY:
        raise EngineUnavailable(
            "cel-cpp was loaded after regopy in this process and would corrupt memory",
            hint="import policykit (or policykit.engines) before regopy",
        )
    return cel.NewEnv(
        variables=dict.fromkeys(VARIABLES, cel.Type.DYN),
        extensions=[
            ext_optional.ExtOptional(),
            ext_strings.ExtStrings(),
            ext_bindings.ExtBindings(),
        ],
        functions=_functions(),
    )


_ERROR = cel.Type.ERROR

_ARENA_EVALS = 256
"""Evaluations that share one cel-cpp arena before a fresh one is started."""

_arena: list[Any] = [None, 0]  # the arena in use and the evaluations it has served


def shared_arena() -> Any:
    """The arena evaluations allocate in. cel-cpp makes (and frees) an arena
    for every evaluation not given one (1.5-3 µs of an evaluation's 5-25,
    measured side by side); one arena serves ``_ARENA_EVALS`` evaluations
    here. Every result is read into Python at once; what else allocates in an
    arena keeps it alive: a :class:`~policykit.engines.cel_bindings.Scope`
    holds the arena of its Activation (cel-expr-python's Activation keeps no
    Python reference to it)."""
    if _arena[0] is None or _arena[1] >= _ARENA_EVALS:
        _arena[0], _arena[1] = cel.Arena(), 0
    _arena[1] += 1
    return _arena[0]


_NAMED = re.compile(r"\bvariables\b")
_FIELD = re.compile(r"\bvariables\s*\.\s*\??\s*([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()")


def variables_read(source: str) -> frozenset[str] | None:
    """The ``variables`` an expression may read: none when it does not name
    ``variables`` (CEL has no lookup of a variable by a computed name); the
    fields it selects when every use is a field selection (``variables.x``,
    ``variables.?x``, ``has(variables.x)``); else None, the whole map
    (``variables[k]``, ``size(variables)``, ``variables.all(…)``). A name
    in a string literal only adds to the set, which is harmless."""
    uses = len(_NAMED.findall(source))
    if not uses:
        return frozenset()
    fields = _FIELD.findall(source)
    return frozenset(fields) if len(fields) == uses else None


class View:
    """Bindings shared by many expressions: :meth:`Program.eval` asks the view
    for a program's result (the admission runtime's views of one request,
    :mod:`policykit.engines.cel_bindings`)."""

    __slots__ = ()

    def result(self, program: Program) -> Any:
        """``program``'s value here (:class:`CelEvalError` when it errors)."""
        raise NotImplementedError


class Program:
    """One compiled CEL expression (in the one :func:`environment`)."""

    __slots__ = ("expr", "source", "variables")

    def __init__(self, source: str) -> None:
        self.source = source
        reads = variables_read(source)
        # the variables it reads, sorted (None: any; (): none)
        self.variables = None if reads is None else tuple(sorted(reads))
        env = environment()  # PK005 when cel-cpp cannot run safely here
        try:
            self.expr = env.compile(source)
        except Exception as e:  # cel-cpp raises a bare RuntimeError-like type
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise CelEvalError(f"CEL does not compile: {first}") from None

    def eval(self, data: Mapping[str, Any] | View) -> Any:
        """The value on ``data`` (a map of the :data:`VARIABLES`, unbound ones
        null, or a :class:`View` of shared bindings); :class:`CelEvalError`
        when it errors."""
        if isinstance(data, View):
            return data.result(self)
        full = dict.fromkeys(VARIABLES)
        full.update(data)
        return self.read(self.expr.eval(data=full, arena=shared_arena()))

    def read(self, value: Any) -> Any:
        """A cel-cpp result of this program as Python; :class:`CelEvalError`
        when it is an error or a value policykit cannot read.

        An error's plain value is its message, a string: the value's type
        (``value.type()``, which costs twice the conversion of a small value,
        issue 21) is asked only of a string, or of a value that does not
        convert."""
        try:
            got = value.plain_value()
        except (TypeError, ValueError) as exc:  # a value cel-expr-python cannot convert
            if value.type() == _ERROR:
                raise self._error(value) from None
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CelEvalError(
                f"CEL evaluation error: a result policykit cannot read ({first}) "
                f"in {self.source[:120]}"
            ) from None
        if isinstance(got, str) and value.type() == _ERROR:
            raise self._error(value)
        return got

    def _error(self, value: Any) -> CelEvalError:
        return CelEvalError(f"CEL evaluation error: {value.value()} in {self.source[:120]}")


@lru_cache(maxsize=4096)
def program(source: str) -> Program:
    return Program(source)


class _Rule:
    __slots__ = ("cr", "items", "match", "message", "variables", "violation")

    def __init__(self, cr: CelRule) -> None:
        self.cr = cr
        self.variables = [(name, program(expr)) for name, expr in cr.variables]
        self.match = program(cr.match)
        self.violation = program(cr.violation)
        self.message = program(cr.message)
        self.items = program(cr.items) if cr.items is not None else None


class CelEngine:
    """Evaluates packs compiled to CEL over documents, finding for finding as
    the reference engine (``each`` rules give one finding per item)."""

    def __init__(
        self, packs: Sequence[Pack], params: Mapping[str, Mapping[str, Any]] | None = None
    ) -> None:
        params = params or {}
        self.packs = tuple(packs)
        self.rules: list[_Rule] = []
        self.effective_params: dict[str, dict[str, Any]] = {}
        for pack in self.packs:
            eff = check_pack(pack, params.get(pack.name, {}))
            self.effective_params[pack.name] = eff
            self.rules += [_Rule(cr) for cr in compile_pack(pack, eff)]

    @property
    def uses_inventory(self) -> bool:
        """Always false: the CEL target refuses ``objects()`` (an admission CEL
        expression sees one object), so no pack this engine runs reads it."""
        return False

    def set_inventory(self, objects: Sequence[dict[str, Any]]) -> None:
        """Nothing to keep: no CEL rule reads the inventory (:attr:`uses_inventory`)."""

    def evaluate_object(self, obj: Mapping[str, Any]) -> list[tuple[CelRule, str, int | None]]:
        """Each rule's findings on ``obj`` as written (the reference's reading:
        ``null`` is a value). A typed path through a null field of a built-in
        kind errs here (:class:`CelEvalError`, that object's error entry), where
        the API server, which drops such nulls, would evaluate it: ``verify``'s
        admission harness reads objects as admitted
        (:func:`policykit.k8s.kinds.as_admitted`)."""
        data = {"object": obj}
        out: list[tuple[CelRule, str, int | None]] = []
        for r in self.rules:
            if r.match.eval(data) is not True:
                continue
            if r.variables:  # the policy's variables, in order (each may use the earlier)
                bound: dict[str, Any] = {}
                data = {"object": obj, "variables": bound}
                for name, prog in r.variables:
                    bound[name] = prog.eval(data)
            if r.items is not None:
                for i, msgs in enumerate(r.items.eval(data)):
                    for m in msgs:
                        out.append((r.cr, m, i))
            elif r.violation.eval(data) is True:
                out.append((r.cr, r.message.eval(data), None))
        return out

    def evaluate(self, doc: Document) -> list[Finding]:
        return findings_of(
            doc, ((cr.rule, cr.pack, msg, item) for cr, msg, item in self.evaluate_object(doc.obj))
        )

    def evaluate_all(self, docs: Iterable[Document]) -> list[Finding]:
        out: list[Finding] = []
        for d in docs:
            out.extend(self.evaluate(d))
        return out
