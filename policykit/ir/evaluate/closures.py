"""The reference semantics (``docs/semantics.md``): IR → Python closures.

Each node is compiled once into a closure over an environment (variables →
values, :mod:`policykit.ir.evaluate.env`), dispatching on node class
(``v_<Node>`` for values, ``p_<Node>`` for predicates); evaluating then costs a
few dictionary look-ups per node. The engine that runs packs over documents
(:mod:`policykit.engines.native`) and the compilers that fold constants
(:class:`policykit.ir.passes.Folder`) both use it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from policykit.ir.evaluate import joins
from policykit.ir.evaluate.env import INVENTORY, Env, F, PredFn, T, ValueFn, identity
from policykit.ir.evaluate.remember import per_item, per_object, worth_remembering
from policykit.ir.joins import grouped_of, join_of
from policykit.ir.nodes import (
    OBJECT_ROOT,
    And,
    Arith,
    Compare,
    Count,
    Default,
    Exists,
    Filter,
    In,
    Index,
    IsType,
    Keys,
    Length,
    Literal,
    Matches,
    Node,
    Not,
    Objects,
    Or,
    Param,
    Path,
    Pred,
    Quantifier,
    Quantity,
    StrOp,
    Sum,
    Value,
)
from policykit.ir.quantity import to_quantity
from policykit.ir.reads import free_roots, reads_inventory
from policykit.ir.regex import compile_portable
from policykit.values import (
    MISSING,
    exact_sum,
    is_number,
    json_equal,
    json_type,
)
from policykit.values import arith as exact_arith

ARITH_MEMO = 65536
"""Results of exact arithmetic remembered, at most (then forgotten at once)."""
_ARITH: dict[tuple[Any, ...], Any] = {}
"""(op, type, a, type, b) → ``values.arith(op, a, b)``: exact arithmetic on
decimals costs microseconds, and the operands repeat (quantities, prices,
replica counts). A pure function of its key: ``-0.0`` and ``0.0`` share a key
and give the same result (a zero result is the integer 0; a division by either
is undefined), NaN never hits (it is not equal to itself)."""


class Evaluator:
    """IR → closures, dispatching on node class (``v_<Class>``, ``p_<Class>``).

    ``remember=False`` is the plain reading of the semantics: nothing is
    remembered between inventory items and joins are not indexed."""

    def __init__(self, params: Mapping[str, Any], *, remember: bool = True) -> None:
        self.params = params
        self.remember = remember
        # inside the body of a loop over the inventory: its variable. A cross-
        # object rule reads every other object for every object (n² pairs); in
        # its loop bodies, the largest parts that read only the item are
        # remembered per item, and those that read only the object under
        # review are computed once per object (benchmarks/bench_inventory.py).
        self._loop_var: str | None = None

    def in_loop(self, var: str, collection: Value, compile_body: Callable[[], F]) -> F:
        outer = self._loop_var
        self._loop_var = var if self.remember and reads_inventory(collection) else None
        try:
            return compile_body()
        finally:
            self._loop_var = outer

    def _remember(self, node: Node, compile_node: Callable[[Node], F]) -> F:
        var = self._loop_var
        if var is None or not worth_remembering(node):
            return compile_node(node)
        roots, inventory = free_roots(node)
        if inventory or (not roots <= {var} and not roots <= {OBJECT_ROOT}):
            return compile_node(node)
        self._loop_var = None  # its parts are not remembered on their own
        try:
            fn = compile_node(node)
        finally:
            self._loop_var = var
        return per_item(fn, var) if roots <= {var} else per_object(fn)

    def value(self, node: Value) -> ValueFn:
        fn: Callable[[Any], ValueFn] | None = getattr(self, f"v_{type(node).__name__}", None)
        if fn is None:
            raise NotImplementedError(f"reference semantics: no value semantics for {node!r}")
        return self._remember(node, fn)

    def pred(self, node: Pred) -> PredFn:
        fn: Callable[[Any], PredFn] | None = getattr(self, f"p_{type(node).__name__}", None)
        if fn is None:
            raise NotImplementedError(f"reference semantics: no predicate semantics for {node!r}")
        return self._remember(node, fn)

    def plain(self, compile_node: Callable[[], T]) -> T:
        """Compiled outside any loop over the inventory (nothing remembered):
        for what a join's index evaluates once per item."""
        outer = self._loop_var
        self._loop_var = None
        try:
            return compile_node()
        finally:
            self._loop_var = outer

    # values ---------------------------------------------------------------

    def v_Path(self, n: Path) -> ValueFn:
        root, segs = n.root, n.segments
        if not segs:
            return lambda env: env[root]
        if all(isinstance(s, str) for s in segs):
            if len(segs) == 1:
                (a,) = segs

                def get1(env: Env) -> Any:
                    v = env[root]
                    return v.get(a, MISSING) if type(v) is dict else MISSING

                return get1
            if len(segs) == 2:
                a, b = segs

                def get2(env: Env) -> Any:
                    v = env[root]
                    if type(v) is not dict:
                        return MISSING
                    v = v.get(a, MISSING)
                    return v.get(b, MISSING) if type(v) is dict else MISSING

                return get2

        def get(env: Env) -> Any:
            v = env[root]
            for s in segs:
                if type(s) is str:
                    if type(v) is not dict:
                        return MISSING
                    v = v.get(s, MISSING)
                else:
                    if type(v) is not list or s >= len(v):  # type: ignore[operator]
                        return MISSING
                    v = v[s]  # type: ignore[index]
            return v

        return get

    def v_Literal(self, n: Literal) -> ValueFn:
        v = list(n.value) if isinstance(n.value, tuple) else n.value
        return lambda env: v

    def v_Param(self, n: Param) -> ValueFn:
        v = self.params.get(n.name, MISSING)
        return lambda env: v

    def v_Length(self, n: Length) -> ValueFn:
        f = self.value(n.operand)

        def length(env: Env) -> Any:
            v = f(env)
            t = type(v)
            return len(v) if t is str or t is list or t is dict else MISSING

        return length

    def v_Quantity(self, n: Quantity) -> ValueFn:
        f = self.value(n.operand)

        def qty(env: Env) -> Any:
            q = to_quantity(f(env))
            return MISSING if q is None else q

        return qty

    def v_Arith(self, n: Arith) -> ValueFn:
        lf, rf, op = self.value(n.left), self.value(n.right), n.op
        known = _ARITH

        def arith(env: Env) -> Any:
            a, b = lf(env), rf(env)
            ta, tb = type(a), type(b)
            if not ((ta is int or ta is float) and (tb is int or tb is float)):
                return MISSING
            key = (op, ta, a, tb, b)
            r = known.get(key, known)
            if r is known:
                r = exact_arith(op, a, b)
                if len(known) >= ARITH_MEMO:
                    known.clear()
                known[key] = r
            return MISSING if r is None else r

        return arith

    def v_Default(self, n: Default) -> ValueFn:
        f, fb = self.value(n.operand), self.value(n.fallback)

        def default(env: Env) -> Any:
            v = f(env)
            return fb(env) if v is MISSING or v is None else v

        return default

    def v_Keys(self, n: Keys) -> ValueFn:
        f = self.value(n.operand)

        def keys(env: Env) -> Any:
            v = f(env)
            return sorted(v) if type(v) is dict else MISSING

        return keys

    def v_Count(self, n: Count) -> ValueFn:
        grouped = grouped_of(n) if self.remember else None
        if grouped is not None:
            return joins.grouped(self, grouped)
        cf, var = self.value(n.collection), n.var
        body = self.in_loop(var, n.collection, lambda: self.pred(n.body))

        def count(env: Env) -> Any:
            coll = cf(env)
            if type(coll) is not list:
                return 0
            inner = dict(env)
            c = 0
            for item in coll:
                inner[var] = item
                if body(inner):
                    c += 1
            return c

        return count

    def v_Sum(self, n: Sum) -> ValueFn:
        grouped = grouped_of(n) if self.remember else None
        if grouped is not None:
            return joins.grouped(self, grouped)
        cf, var = self.value(n.collection), n.var
        term = self.in_loop(var, n.collection, lambda: self.value(n.term))

        def total(env: Env) -> Any:
            coll = cf(env)
            if type(coll) is not list:
                return 0
            inner = dict(env)
            terms: list[int | float] = []
            for item in coll:
                inner[var] = item
                t = term(inner)
                if is_number(t):
                    terms.append(t)
            return exact_sum(terms)

        return total

    def v_Index(self, n: Index) -> ValueFn:
        bf, kf = self.value(n.base), self.value(n.key)

        def index(env: Env) -> Any:
            b, k = bf(env), kf(env)
            if type(b) is not dict or type(k) is not str:
                return MISSING
            return b.get(k, MISSING)

        return index

    def v_Filter(self, n: Filter) -> ValueFn:
        join = join_of(n) if self.remember else None
        if join is not None:
            return joins.join_filter(self, join)
        cf, var = self.value(n.collection), n.var
        body = self.in_loop(var, n.collection, lambda: self.pred(n.body))

        def keep(env: Env) -> Any:
            coll = cf(env)
            if type(coll) is not list:
                return MISSING
            inner = dict(env)
            out = []
            for item in coll:
                inner[var] = item
                if body(inner):
                    out.append(item)
            return out

        return keep

    def v_Objects(self, n: Objects) -> ValueFn:
        state: list[Any] = [None, []]  # the inventory, and its objects' identities

        def others(env: Env) -> Any:
            inv = env.get(INVENTORY, ())
            if inv is not state[0]:
                state[0], state[1] = inv, [(identity(o), o) for o in inv]
            me = identity(env[OBJECT_ROOT])
            return [o for who, o in state[1] if who != me]

        return others

    # predicates -----------------------------------------------------------

    def p_Compare(self, n: Compare) -> PredFn:
        lf, rf, op = self.value(n.left), self.value(n.right), n.op
        if op == "==":
            return lambda env: _eq(lf(env), rf(env))
        if op == "!=":
            return lambda env: _ne(lf(env), rf(env))

        def order(env: Env) -> bool:
            a, b = lf(env), rf(env)
            ta, tb = type(a), type(b)
            if (ta is int or ta is float) and (tb is int or tb is float):
                pass
            elif not (ta is str and tb is str):
                return False
            if op == "<":
                return bool(a < b)
            if op == "<=":
                return bool(a <= b)
            if op == ">":
                return bool(a > b)
            return bool(a >= b)

        return order

    def p_And(self, n: And) -> PredFn:
        fs = [self.pred(i) for i in n.items]
        if len(fs) == 2:  # the common case, without a generator per call
            a, b = fs
            return lambda env: a(env) and b(env)
        return lambda env: all(f(env) for f in fs)

    def p_Or(self, n: Or) -> PredFn:
        fs = [self.pred(i) for i in n.items]
        if len(fs) == 2:
            a, b = fs
            return lambda env: a(env) or b(env)
        return lambda env: any(f(env) for f in fs)

    def p_Not(self, n: Not) -> PredFn:
        f = self.pred(n.item)
        return lambda env: not f(env)

    def p_Exists(self, n: Exists) -> PredFn:
        f = self.value(n.operand)

        def exists(env: Env) -> bool:
            v = f(env)
            return v is not MISSING and v is not None

        return exists

    def p_Matches(self, n: Matches) -> PredFn:
        sf = self.value(n.subject)
        pattern = self.value(n.pattern)({})
        search = compile_portable(pattern).search
        return lambda env: (type(s := sf(env)) is str) and search(s) is not None

    def p_StrOp(self, n: StrOp) -> PredFn:
        sf, af, op = self.value(n.subject), self.value(n.arg), n.op

        def strop(env: Env) -> bool:
            s, a = sf(env), af(env)
            if type(s) is not str or type(a) is not str:
                return False
            if op == "startswith":
                return s.startswith(a)
            if op == "endswith":
                return s.endswith(a)
            return a in s

        return strop

    def p_In(self, n: In) -> PredFn:
        ef, cf = self.value(n.element), self.value(n.collection)

        def member(env: Env) -> bool:
            e, coll = ef(env), cf(env)
            if e is MISSING or type(coll) is not list:
                return False
            return any(json_equal(e, x) for x in coll)

        return member

    def p_Quantifier(self, n: Quantifier) -> PredFn:
        cf, var = self.value(n.collection), n.var
        body = self.in_loop(var, n.collection, lambda: self.pred(n.body))
        want_all = n.kind == "all"

        def quant(env: Env) -> bool:
            coll = cf(env)
            if type(coll) is not list:
                return want_all
            inner = dict(env)
            for item in coll:
                inner[var] = item
                if body(inner) is not want_all:
                    return not want_all
            return want_all

        return quant

    def p_IsType(self, n: IsType) -> PredFn:
        f, name = self.value(n.operand), n.type_name
        return lambda env: json_type(f(env)) == name


def _eq(a: Any, b: Any) -> bool:
    if a is MISSING or b is MISSING:
        return False
    return json_equal(a, b)


def _ne(a: Any, b: Any) -> bool:
    if a is MISSING or b is MISSING:
        return False
    return not json_equal(a, b)


def nodes_supported() -> set[str]:
    """Node classes given semantics here (for the capability tests)."""
    return {n[2:] for n in dir(Evaluator) if n.startswith(("v_", "p_"))}
