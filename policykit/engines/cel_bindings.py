"""The CEL evaluation of one admission request, shared by every policy and
every expression evaluated on it (issue 21): :class:`Bindings` (the
request's variables and the policies' ``variables``), the :class:`Scope` an
expression runs on (one cel-cpp Activation, so the object is converted to
CEL once) and the :class:`VariablesView` one policy's expressions see.

A scope also remembers each program's result (value or error): a second
policy with an identical expression on the same request (``verify`` runs
the ValidatingAdmissionPolicy and the Kyverno ValidatingPolicy of a rule,
whose CEL texts are the same) reads it instead of evaluating it again. The
result is keyed by the :class:`~policykit.engines.cel.Program` itself, which
:func:`~policykit.engines.cel.program` compiles from its text in the one
:func:`~policykit.engines.cel.environment`; the scope binds fixed values, so
the same program on the same scope always gives the same result. The only
other input an expression has, the context that Kyverno's ``resource.Get``
and ``image.GetMetadata`` read, belongs to the bindings' owner: it keys the
bindings (:meth:`policykit.k8s.request.Review.bindings`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from policykit.engines.cel import (
    VARIABLES,
    CelEvalError,
    Program,
    View,
    environment,
    program,
    shared_arena,
)

Declared = tuple[tuple[str, str], ...]
"""Variable declarations (name, expression), in order."""


class Scope:
    """Bindings that several expressions read, on one cel-cpp Activation.

    cel-cpp converts a bound Python value the first time an expression on an
    Activation reads it, and keeps the conversion for the Activation's later
    expressions (converting a 560-byte Deployment costs more than a small
    evaluation, ``docs/engines.md``). The values must therefore not change
    while the scope is in use: a scope holds its own top-level map, and what
    it binds is never mutated. The first evaluation passes the map itself
    (cheaper than making an Activation for one evaluation); the Activation
    is made for the second.

    :meth:`result` remembers each program's result here: the values it
    returns are shared, and must not be changed either."""

    __slots__ = ("_activation", "_arena", "_results", "_used", "data")

    def __init__(
        self, data: Mapping[str, Any], *, shared: bool = False, whole: bool = False
    ) -> None:
        if whole and isinstance(data, dict):  # every one of the VARIABLES: the scope's own
            self.data = data
        else:
            self.data = dict.fromkeys(VARIABLES)
            self.data.update(data)
        self._used = shared  # a scope many expressions will read: an Activation at once
        self._activation: Any = None
        self._arena: Any = None  # held while the Activation lives (it keeps no reference)
        # each program's value, or the message of its error (the key keeps the
        # program alive, so its identity is never reused meanwhile)
        self._results: dict[Program, tuple[Any, str | None]] = {}

    def eval(self, expr: Any) -> Any:
        """``expr`` (a compiled cel-cpp expression) on these bindings."""
        if self._activation is not None:
            return expr.eval(activation=self._activation)
        if not self._used:
            self._used = True
            return expr.eval(data=self.data, arena=shared_arena())
        # the Activation allocates its conversions in this arena but holds no
        # Python reference to it: without this one, the arena could be freed
        # (a fresh one replaces it every _ARENA_EVALS) while the scope is in use
        self._arena = shared_arena()
        self._activation = environment().Activation(data=self.data, arena=self._arena)
        return expr.eval(activation=self._activation)

    def result(self, prog: Program) -> Any:
        """``prog``'s value on these bindings, evaluated once per scope;
        :class:`CelEvalError` (each time) when it errors."""
        got = self._results.get(prog)
        if got is None:
            try:
                got = (prog.read(self.eval(prog.expr)), None)
            except CelEvalError as exc:
                got = (None, exc.message)
            self._results[prog] = got
        if got[1] is not None:
            raise CelEvalError(got[1])
        return got[0]


class VariablesView(View):
    """The bindings one policy's expressions see: the request variables, and
    its variables bound so far (``bound`` None: ``variables`` is unbound)."""

    __slots__ = ("_bindings", "_bound", "_key")

    def __init__(self, bindings: Bindings, key: Declared, bound: Mapping[str, Any] | None) -> None:
        self._bindings, self._key, self._bound = bindings, key, bound

    def result(self, program: Program) -> Any:
        bound = self._bound
        reads = program.variables
        bindings = self._bindings
        if bound is None or reads == ():
            return bindings.plain_scope.result(program)
        scope = bindings._scopes.get((self._key, reads))  # Bindings.scope, made before
        if scope is None:
            scope = bindings.scope(self._key, bound, reads)
        return scope.result(program)


class Bindings:
    """The CEL evaluation of one admission request, shared by every policy
    evaluated on it: the request's variables (``object``, ``oldObject``,
    ``request``, ``params``, ``namespaceObject``) and the policies'
    ``variables``.

    A policy's variables are evaluated in order, each seeing the ones before
    it; one that fails to evaluate is left out, so an expression that reads
    it errors (the lazy evaluation of the API server, k8s.io/apiserver
    ``pkg/admission/plugin/cel/composition.go``, errors only where the
    variable is read). A variable's value depends only on the request and
    the declarations up to it, so it is remembered by those declarations:
    policies that declare the same leading variables evaluate them once.

    An expression runs on a :class:`Scope` that binds only the variables it
    reads (each bound value is converted to CEL when read), shared by the
    expressions that read the same ones: those that read none share one
    with the object, converted once per request. A scope's data depends only
    on the request and its key, so a program's result on it is remembered
    there (:meth:`Scope.result`)."""

    __slots__ = ("_scopes", "_values", "plain", "plain_scope")

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.plain_scope = Scope({k: v for k, v in data.items() if k != "variables"}, shared=True)
        self._values: dict[Declared, dict[str, Any]] = {(): {}}
        self._scopes: dict[tuple[Declared, tuple[str, ...] | None], Scope] = {}
        self.plain = VariablesView(self, (), None)

    @property
    def data(self) -> dict[str, Any]:
        """The request's variables (``variables`` unbound)."""
        return self.plain_scope.data

    def scope(
        self, key: Declared, bound: Mapping[str, Any] | None, reads: tuple[str, ...] | None
    ) -> Scope:
        """The scope of the variables ``key`` declares (values ``bound``) for an
        expression that reads ``reads`` of them (None: any)."""
        if bound is None or reads == ():
            return self.plain_scope
        got = self._scopes.get((key, reads))
        if got is None:
            shown = dict(bound) if reads is None else {n: bound[n] for n in reads if n in bound}
            whole = {**self.plain_scope.data, "variables": shown}
            got = self._scopes[key, reads] = Scope(whole, whole=True)
        return got

    def bind(self, variables: Sequence[Mapping[str, Any]] | Declarations) -> VariablesView:
        """The view with ``variables`` (declarations: ``name``, ``expression``)
        bound, in order."""
        if not isinstance(variables, Declarations):
            variables = Declarations(variables)
        known = self._values
        key: Declared = ()
        bound = known[key]
        for after, name, expression in variables.steps:
            values = known.get(after)
            if values is None:
                values = dict(bound)
                # one that errors is left out: an expression that reads it errors
                with contextlib.suppress(CelEvalError):
                    values[name] = program(expression).eval(VariablesView(self, key, bound))
                known[after] = values
            key, bound = after, values
        return VariablesView(self, key, bound)


class Declarations:
    """A policy's ``variables`` read once (when first bound): each with the
    declarations up to it."""

    __slots__ = ("_steps", "_variables")

    def __init__(self, variables: Sequence[Mapping[str, Any]]) -> None:
        self._variables = variables
        self._steps: tuple[tuple[Declared, str, str], ...] | None = None

    @property
    def steps(self) -> tuple[tuple[Declared, str, str], ...]:
        if self._steps is None:
            steps: list[tuple[Declared, str, str]] = []
            key: Declared = ()
            for var in self._variables:
                name, expression = str(var["name"]), str(var["expression"])
                key = (*key, (name, expression))
                steps.append((key, name, expression))
            self._steps = tuple(steps)
        return self._steps
