"""The cost of a call: cel-go ``checker/cost.go`` ``functionCost`` and
Kubernetes ``apiserver/pkg/cel/library/cost.go`` ``EstimateCallCost``, for the
functions policykit emits. Every call not named here costs 1 plus its
operands (cost.go's O(1) default)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from policykit.targets.k8s.cel_cost import model as cc
from policykit.targets.k8s.cel_cost.model import Info, Range
from policykit.targets.k8s.cel_cost.parser import Call, Expr, Ident, Lit

if TYPE_CHECKING:
    from policykit.targets.k8s.celcost import Estimator

_TYPE_NAMES = frozenset(
    {"map", "list", "string", "int", "uint", "double", "bool", "bytes", "null_type", "type", "dyn"}
)
_NAMESPACES = frozenset({"optional", "cel", "math", "strings", "sets", "lists"})
_ORDER = frozenset({"_<_", "_<=_", "_>_", "_>=_"})
_CONVERT = {
    "string": "string",
    "int": "int",
    "uint": "uint",
    "double": "double",
    "bool": "bool",
    "size": "int",
    "bytes": "bytes",
}


def call_cost(est: Estimator, e: Call) -> tuple[Range, Info]:

    fn, target = e.fn, e.target
    if isinstance(target, Ident) and target.name in _NAMESPACES and target.name not in est.scopes:
        fn, target = f"{target.name}.{fn}", None
    if fn == "dyn" and len(e.args) == 1:  # cost.go maybeUnwrapDynCall
        c, i = est.cost(e.args[0])
        return c + cc.ONE, cc.Info(cc.DYN, i.size, i.entry)
    if fn == "_?._" and len(e.args) == 2 and isinstance(e.args[1], Lit):
        c, i = est.cost(e.args[0])
        f = est._field(_unwrap(est, i), str(e.args[1].value))
        return c + cc.ONE, _optional(est, f)
    arg_costs: list[Range] = []
    infos: list[Info] = []
    for a in e.args:
        c, i = est.cost(a)
        arg_costs.append(c)
        infos.append(_type_value(est, a, i))
    args_sum = cc.ZERO
    for c in arg_costs:
        args_sum = args_sum + c
    t_cost, t_info = cc.ZERO, None
    if target is not None:
        t_cost, t_info = est.cost(target)
    fn_cost, info = _function(est, fn, t_info, infos, arg_costs, args_sum)
    return t_cost + fn_cost, info


def _type_value(est: Estimator, a: Expr, i: Info) -> Info:
    """A type name used as a value (``map`` in ``type(x) == map``): size 1 in the
    typical model, as at run time; unknown in cel-go's estimate."""

    if isinstance(a, Ident) and a.name in _TYPE_NAMES and a.name not in est.scopes:
        return cc.Info(cc.Ty("type"), cc.ONE if est.sizes.items is not None else None)
    return i


def _optional(est: Estimator, value: Info) -> Info:
    """An optional of ``value``. cel-go's estimator tracks no size through an
    optional (cost.go keeps sizes only along selections, indexes and
    identifiers), so in Kubernetes' model its size is unknown unless scalar."""

    keep = est.sizes.items is not None or value.ty.kind in cc.SCALARS
    return cc.Info(cc.Ty("optional", None, value.ty), value.size if keep else None)


def _unwrap(est: Estimator, i: Info) -> Info:
    """An optional's value: ``a.?b.?c`` selects ``c`` on the value of ``a.?b``."""

    if i.ty.kind != "optional":
        return i
    inner = i.ty.elem or cc.DYN
    if est.sizes.items is None:
        return cc.Info(inner, cc.ONE if inner.kind in cc.SCALARS else None)
    return est._typed(inner, i.size)


def _is(i: Info | None, *kinds: str) -> bool:
    return i is not None and i.ty.kind in kinds


def _function(
    est: Estimator, fn: str, t: Info | None, a: list[Info], ac: list[Range], args_sum: Range
) -> tuple[Range, Info]:

    size = est.size
    boolean = cc.Info(cc.Ty("bool"), cc.ONE)
    if fn in ("_&&_", "_||_") and len(ac) == 2:
        return cc.Range(ac[0].lo, (ac[0] + ac[1]).hi), boolean
    if fn == "_?_:_" and len(a) == 3:
        s = (
            a[1].size.union(a[2].size)
            if a[1].size is not None and a[2].size is not None
            else None
            if est.sizes.items is not None
            else cc.UNKNOWN
        )
        entry = a[1].entry.union(a[2].entry) if a[1].entry is not None else None
        ty = (
            a[1].ty
            if a[1].ty.kind == a[2].ty.kind
            else (a[1].ty if _empty_list(a[2]) else a[2].ty if _empty_list(a[1]) else cc.DYN)
        )
        return ac[0] + ac[1].union(ac[2]), cc.Info(ty, s, entry)
    if fn in ("_==_", "_!=_") or (
        fn in _ORDER and (_is(a[0], "string", "bytes") or _is(a[1], "string", "bytes"))
    ):
        small = min(size(a[0]).hi, size(a[1]).hi)
        return cc.Range(1 if small > 0 else 0, small).factor(cc.TRAVERSAL) + args_sum, boolean
    if fn == "@in" and len(a) == 2:
        if _is(a[1], "list"):
            return est.count(a[1]) + args_sum, boolean
        return cc.ONE + args_sum, boolean
    if fn == "_+_" and len(a) == 2:
        if _is(a[0], "list") or _is(a[1], "list"):
            lt = a[0].ty if _is(a[0], "list") else a[1].ty
            entry = a[0].entry.union(a[1].entry) if a[0].entry is not None else None
            both = (
                a[0].size + a[1].size
                if a[0].size is not None and a[1].size is not None
                else None
                if est.sizes.items is not None
                else cc.UNKNOWN
            )
            return cc.ONE + args_sum, cc.Info(lt, both, entry)
        if _is(a[0], "string") or _is(a[1], "string"):
            s = size(a[0]) + size(a[1])
            return s.factor(cc.TRAVERSAL) + args_sum, cc.Info(cc.Ty("string"), s)
        return cc.ONE + args_sum, cc.Info(a[0].ty if a[0].ty.kind in cc.SCALARS else cc.DYN)
    if fn in ("_[_]", "_[?_]") and len(a) == 2:
        base = _unwrap(est, a[0])
        if _is(base, "list", "map"):
            item = est._typed(base.ty.elem or cc.DYN, base.entry.val if base.entry else None)
        else:
            item = cc.Info(cc.DYN)
        if fn == "_[?_]":
            item = _optional(est, item)
        return cc.ONE + args_sum, item
    if t is not None:
        out = _member(est, fn, t, a, args_sum)
        if out is not None:
            return out
    if fn in _CONVERT:
        ty = cc.Ty(_CONVERT[fn])
        return cc.ONE + args_sum, cc.Info(ty, cc.ONE if ty.kind in cc.SCALARS else None)
    if fn == "type":
        return cc.ONE + args_sum, cc.Info(
            cc.Ty("type"), cc.ONE if est.sizes.items is not None else None
        )
    if fn in ("_-_", "_*_", "_/_", "_%_", "-_"):
        return cc.ONE + args_sum, cc.Info(a[0].ty if a[0].ty.kind in cc.SCALARS else cc.DYN)
    if fn in ("!_", "@not_strictly_false", "isQuantity"):
        return cc.ONE + args_sum, boolean
    if fn == "optional.of" and a:
        return cc.ONE + args_sum, _optional(est, a[0])
    if fn == "quantity":
        return cc.ONE + args_sum, cc.Info(cc.Ty("quantity"))
    return cc.ONE + args_sum, cc.Info(cc.DYN)


def _empty_list(i: Info) -> bool:
    return i.ty.kind == "list" and i.size is not None and i.size.hi == 0


def _member(
    est: Estimator, fn: str, t: Info, a: list[Info], args_sum: Range
) -> tuple[Range, Info] | None:

    size = est.size
    ts = size(t)
    string = cc.Ty("string")
    if fn in ("startsWith", "endsWith") and len(a) == 1:
        return size(a[0]).factor(cc.TRAVERSAL) + args_sum, cc.Info(cc.Ty("bool"), cc.ONE)
    if fn == "contains" and len(a) == 1 and not _is(t, "list", "map"):
        return (
            ts.factor(cc.TRAVERSAL) * size(a[0]).factor(cc.TRAVERSAL) + args_sum,
            cc.Info(cc.Ty("bool"), cc.ONE),
        )
    if fn == "matches" and len(a) == 1:
        str_cost = (ts + cc.ONE).factor(cc.TRAVERSAL)
        return (str_cost * size(a[0]).factor(cc.REGEX) + args_sum, cc.Info(cc.Ty("bool"), cc.ONE))
    if fn in ("substring", "trim", "lowerAscii", "upperAscii"):
        return ts.factor(cc.TRAVERSAL) + args_sum, cc.Info(string, ts)
    if fn == "replace" and len(a) >= 2:
        return ts.factor(2 * cc.TRAVERSAL) + args_sum, cc.Info(
            string, _replaced(ts, size(a[0]), size(a[1]))
        )
    if fn == "split":
        return ts.factor(2 * cc.TRAVERSAL) + args_sum, cc.Info(
            cc.Ty("list", None, string), cc.Range(0, ts.hi)
        )
    if fn == "join" and _is(t, "list"):
        elem = t.entry.val if t.entry is not None else est._typed(t.ty.elem or cc.DYN).size
        s = ts * (elem if elem is not None else est.sizes.unknown)
        if a:
            s = s + size(a[0]) * cc.Range(max(ts.lo - 1, 0), max(ts.hi - 1, 0))
        return s.factor(cc.TRAVERSAL) + args_sum, cc.Info(string, s)
    if fn in ("sum", "max", "min", "isSorted", "indexOf", "lastIndexOf") and _is(t, "list"):
        el = cc.ONE
        et = t.ty.elem or cc.DYN
        if et.kind in ("string", "bytes"):
            ev = t.entry.val if t.entry is not None else est._typed(et).size
            el = el + (ev if ev is not None else est.sizes.unknown).factor(cc.TRAVERSAL)
        return ts * el + args_sum, cc.Info(et if et.kind in cc.SCALARS else cc.DYN)
    if fn in ("orValue", "value") and _is(t, "optional"):
        return cc.ONE + args_sum, _unwrap(est, t)
    if fn == "hasValue":
        return cc.ONE + args_sum, cc.Info(cc.Ty("bool"), cc.ONE)
    if fn == "or":
        return cc.ONE + args_sum, t
    if fn == "asApproximateFloat":
        return cc.ONE + args_sum, cc.Info(cc.Ty("double"), cc.ONE)
    if fn == "size":
        return cc.ONE + args_sum, cc.Info(cc.Ty("int"), cc.ONE)
    return None


def _replaced(sz: Range, old: Range, new: Range) -> Range:
    """library/cost.go ``replace``: the result's size."""

    top = cc.U64
    if old.lo == 0:
        cnt_hi, keep_hi = (sz.hi + 1 if sz.hi < top else sz.hi), sz.hi
    elif new.hi <= old.lo:
        cnt_hi, keep_hi = 0, sz.hi
    else:
        cnt_hi, keep_hi = -(-sz.hi // old.lo), 0
    if old.hi == 0:
        cnt_lo, keep_lo = (sz.lo + 1 if sz.lo < top else sz.lo), sz.lo
    elif old.hi <= new.lo:
        cnt_lo, keep_lo = 0, sz.lo
    else:
        cnt_lo, keep_lo = -(-sz.lo // old.hi), 0
    return cc.Range(cnt_lo, cnt_hi) * new + cc.Range(keep_lo, keep_hi)
