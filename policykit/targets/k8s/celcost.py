"""The static cost estimate of a CEL expression, the way cel-go's estimator
computes it (google/cel-go ``checker/cost.go``, constants in
``common/cost.go``) with Kubernetes' per-function costs
(kubernetes ``staging/src/k8s.io/apiserver/pkg/cel/library/cost.go``) and
size rules (``staging/src/k8s.io/apiserver/pkg/cel/common/schemas.go``).

What the API server does with it (docs/targets.md, "Limits and cost"): it
never estimates a ValidatingAdmissionPolicy's cost at creation
(``plugin/cel/compile.go`` compiles each expression with ``object`` as
``dyn`` and builds the program; ``admissionregistration/validation`` adds no
cost check), nor does Kyverno for a ValidatingPolicy. At run time each
expression is aborted past ``PerCallLimit`` (1,000,000) and one policy's
validations, their variables and message expressions share
``RuntimeCELCostBudget`` (10,000,000); match conditions have their own
``RuntimeCELCostBudgetMatchConditions`` (2,500,000)
(``apiserver/pkg/apis/cel/config.go``).

The rules followed, node by node: identifiers cost 1; a field selection costs
1 on a map or struct and 0 on ``dyn``; a presence test (``has``) costs 0 (the
``PresenceTestHasCost(false)`` Kubernetes sets); literals 0; list and map
literals 10 and 30 plus their elements; ``&&``, ``||`` and ``?:`` cost their
operands only (the larger branch); ``dyn(x)`` 1; a comprehension costs its
range, its initial value and result plus (range size) x (loop condition +
step); ``cel.bind`` costs its initialiser once; equality and string
comparisons cost 0.1 per character of the shorter operand; ``in`` a list 1 per
element; ``startsWith``/``endsWith`` 0.1 per character of the argument;
``contains`` and ``matches`` the products cost.go gives; ``+`` on strings 0.1
per character of the result; Kubernetes' string functions (``replace``,
``split``, ``join``, ``substring``, ``trim``, ``lowerAscii``, ``quantity``,
``isQuantity``) as library/cost.go; every other call 1 plus its arguments.

Approximations (documented in docs/targets.md, "Limits and cost"):

* types come from the kind's schema (:mod:`fieldtypes`, CRDs), not from a
  cel-go type check, so an overload is chosen by the operand types known here
  (an unknown operand of ``+`` is a string when the other one is); a schema's
  ``maxItems``/``maxLength`` are not read (the packaged tables drop them), so
  every schema list, map and string is unbounded;
* a value no schema bounds gets its size from the :class:`Sizes` model:
  :data:`WORST` is Kubernetes' rule (what fits in a 3 MiB request; a value of
  unknown type is unbounded, as in cel-go), :data:`TYPICAL` — the one the build
  check uses — an object whose lists and maps hold :data:`TYPICAL_ITEMS`
  entries and whose strings hold ``CHARS_PER_ITEM`` characters per item;
  there a type value (``type(x)``, ``map``) has size 1, as at run time, and the
  count of a ``dyn`` container is capped at the list size;
* a comprehension's result is a list of its range's size (cost.go), a
  variable's type and size are those of its expression.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from policykit.targets.k8s import fieldtypes

# the model's public names, re-exported: the estimate's figures are read as celcost.*
from policykit.targets.k8s.cel_cost.model import (
    CHARS_PER_ITEM as CHARS_PER_ITEM,
)
from policykit.targets.k8s.cel_cost.model import (
    DYN,
    ONE,
    SCALARS,
    TYPICAL,
    U64,
    ZERO,
    Entry,
    Info,
    Range,
    Sizes,
    Ty,
    _min_json,
    _of,
    fixed,
)
from policykit.targets.k8s.cel_cost.model import (
    MAX_REQUEST_BYTES as MAX_REQUEST_BYTES,
)
from policykit.targets.k8s.cel_cost.model import (
    TYPICAL_ITEMS as TYPICAL_ITEMS,
)
from policykit.targets.k8s.cel_cost.model import (
    UNKNOWN as UNKNOWN,
)
from policykit.targets.k8s.cel_cost.model import (
    WORST as WORST,
)
from policykit.targets.k8s.cel_cost.parser import (
    Call,
    Comp,
    Expr,
    Ident,
    ListE,
    Lit,
    MapE,
    Select,
    parse,
)


@dataclass
class _Var:
    info: Info


@dataclass
class Estimator:
    """The cost of expressions over ``object`` of type ``root``, with
    ``variables`` already estimated (their results' types and sizes)."""

    root: Ty = DYN
    sizes: Sizes = TYPICAL
    variables: dict[str, Info] = field(default_factory=dict)
    scopes: dict[str, list[_Var]] = field(default_factory=dict)

    def estimate(self, text: str) -> tuple[Range, Info]:
        return self.cost(parse(text))

    # --- sizes -----------------------------------------------------------------

    def _schema_size(self, t: Ty) -> Range | None:
        """library/cost.go ``EstimateSize`` from a schema; scalars are 1."""
        if t.kind in SCALARS:
            return ONE
        if t.ft is None:
            return None
        if t.kind == "list":
            return self.sizes.list(_min_json(t.elem))
        if t.kind == "map":
            return self.sizes.map(_min_json(t.elem))
        if t.kind == "string":
            return self.sizes.string()
        return None

    def _typed(self, t: Ty, size: Range | None = None, entry: Entry | None = None) -> Info:
        return Info(t, size if size is not None else self._schema_size(t), entry)

    def size(self, i: Info) -> Range:
        """cel-go ``sizeOrUnknown``, or the model's size for unknowns."""
        if i.size is not None:
            return i.size
        return self.sizes.unknown

    def count(self, i: Info) -> Range:
        """The number of entries of a container: :meth:`size`, but an unknown
        one is the model's list size (and so is one of a ``dyn`` value: its
        size may be a string's length)."""
        if i.size is not None:
            if self.sizes.items is not None and i.ty.kind not in ("list", "map"):
                return Range(min(i.size.lo, self.sizes.items), min(i.size.hi, self.sizes.items))
            return i.size
        return self.sizes.unknown if self.sizes.items is None else Range(0, self.sizes.items)

    def _entry_val(self, i: Info) -> Range | None:
        return i.entry.val if i.entry is not None else None

    # --- the walk --------------------------------------------------------------

    def cost(self, e: Expr) -> tuple[Range, Info]:
        if isinstance(e, Lit):
            return ZERO, _lit(e)
        if isinstance(e, Ident):
            return ONE, self._ident(e.name)
        if isinstance(e, Select):
            c, i = self.cost(e.operand)
            if e.test_only:
                return c, Info(Ty("bool"), ONE)
            t = i.ty
            if t.kind in ("map", "struct"):
                c = c + ONE
            return c, self._field(i, e.field)
        if isinstance(e, ListE):
            total, item = ZERO, Range(0 if not e.elems else U64, 0)
            elem_ty: Ty | None = None
            for x in e.elems:
                cx, ix = self.cost(x)
                total = total + cx
                item = item.union(self.size(ix))
                elem_ty = ix.ty if elem_ty in (None, ix.ty) else DYN
            return total + fixed(10), Info(
                Ty("list", None, elem_ty or DYN), fixed(len(e.elems)), Entry("list", ONE, item)
            )
        if isinstance(e, MapE):
            total = ZERO
            ks, vs = Range(0 if not e.entries else U64, 0), Range(0 if not e.entries else U64, 0)
            val_ty: Ty | None = None
            for k, v in e.entries:
                ck, ik = self.cost(k)
                cv, iv = self.cost(v)
                total = total + ck + cv
                ks = ks.union(self.size(ik))
                vs = vs.union(self.size(iv))
                val_ty = iv.ty if val_ty in (None, iv.ty) else DYN
            return total + fixed(30), Info(
                Ty("map", None, val_ty or DYN), fixed(len(e.entries)), Entry("map", ks, vs)
            )
        if isinstance(e, Comp):
            return self._comp(e)
        return self._call(e)

    def _ident(self, name: str) -> Info:
        stack = self.scopes.get(name)
        if stack:
            return stack[-1].info
        if name in ("object", "oldObject"):
            return self._typed(self.root)
        if name == "variables":
            return Info(Ty("struct"))
        return Info(DYN)

    def _field(self, i: Info, name: str) -> Info:
        t = i.ty
        if i.ty.kind == "struct" and t.ft is None:  # the variables struct
            return self.variables.get(name, Info(DYN))
        if t.kind == "struct" and t.ft is not None:
            return self._typed(_of(t.ft.field(name)))
        if t.kind == "map":
            return self._typed(t.elem or DYN, self._entry_val(i))
        return Info(DYN)

    def _push(self, name: str, info: Info) -> None:
        self.scopes.setdefault(name, []).append(_Var(info))

    def _pop(self, name: str) -> None:
        self.scopes[name].pop()

    def _comp(self, e: Comp) -> tuple[Range, Info]:
        c_range, i_range = self.cost(e.iter_range)
        c_init, i_init = self.cost(e.accu_init)
        total = c_range + c_init
        self._push(e.accu_var, i_init)
        rt = i_range.ty
        if rt.kind == "list":
            item = self._typed(rt.elem or DYN)
            if item.size is None and i_range.entry is not None:
                item = Info(item.ty, i_range.entry.val)
        elif rt.kind == "map":
            item = Info(
                Ty("string"),
                i_range.entry.key
                if i_range.entry
                else self.sizes.string()
                if rt.ft is not None
                else None,
            )
        else:
            item = Info(DYN)
        self._push(e.iter_var, item)
        c_loop, _ = self.cost(e.loop_cond)
        c_step, i_step = self.cost(e.loop_step)
        self._pop(e.iter_var)
        is_bind = (
            isinstance(e.iter_range, ListE) and not e.iter_range.elems and e.loop_cond == Lit(False)
        )
        if is_bind:  # cost.go costBind: the initialiser once, then the result
            self._pop(e.accu_var)
            self._push(e.accu_var, i_init)
            c_res, i_res = self.cost(e.result)
            self._pop(e.accu_var)
            return total + c_res, i_res
        c_res, i_res = self.cost(e.result)
        self._pop(e.accu_var)
        n = self.count(i_range)
        total = total + c_res + n * (c_step + c_loop)
        if isinstance(e.accu_init, ListE):
            return total, Info(
                Ty("list", None, i_step.ty.elem if i_step.ty.kind == "list" else DYN),
                n,
                i_step.entry,
            )
        return total, Info(i_init.ty if e.accu_init != Lit(0) else Ty("int"), i_init.size)

    def _call(self, e: Call) -> tuple[Range, Info]:
        from policykit.targets.k8s.cel_cost.calls import call_cost

        return call_cost(self, e)


def _lit(e: Lit) -> Info:
    v = e.value
    if isinstance(v, str):
        return Info(Ty("string"), fixed(len(v)))
    if isinstance(v, bytes):
        return Info(Ty("bytes"), fixed(len(v)))
    if isinstance(v, bool):
        return Info(Ty("bool"), ONE)
    if v is None:
        return Info(Ty("null"), ONE)
    return Info(Ty("double" if isinstance(v, float) else "int"), ONE)


def estimate(
    text: str, root: Ty = DYN, sizes: Sizes = TYPICAL, variables: dict[str, Info] | None = None
) -> Range:
    """The estimated cost of ``text`` (a :class:`Range`; ``hi`` is what the
    limits are checked against)."""
    return Estimator(root, sizes, dict(variables or {})).estimate(text)[0]


def root_type(kinds: list[str]) -> Ty:
    """``object``'s type for a policy matching ``kinds``."""
    ft = fieldtypes.of_kinds(kinds) if kinds else None
    return _of(ft if ft is not None else fieldtypes.kubernetes_object())


# --- a whole policy ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyCost:
    """A policy's estimate: each expression's (field path, cost), the sum the
    runtime budget applies to (variables once each — composition.go evaluates
    a variable lazily, at most once per evaluation — plus validations and
    message expressions), and the match conditions' sum (their own budget)."""

    expressions: tuple[tuple[str, Range], ...]
    total: Range
    match_total: Range


def _kinds(spec: dict[str, Any]) -> list[str]:
    """The kinds the policy's selector condition names (``object.kind in [...]``)."""
    out: list[str] = []

    def walk(e: Expr) -> None:
        if isinstance(e, Call):
            if (
                e.fn == "@in"
                and e.args[0] == Select(Ident("object"), "kind")
                and isinstance(e.args[1], ListE)
            ):
                out.extend(str(x.value) for x in e.args[1].elems if isinstance(x, Lit))
            for x in (*e.args, *([e.target] if e.target is not None else [])):
                walk(x)

    for m in spec.get("matchConditions") or []:
        walk(parse(str(m["expression"])))
    return sorted(set(out))


def policy_cost(policy: dict[str, Any], sizes: Sizes = TYPICAL) -> PolicyCost:
    spec = policy.get("spec") or {}
    est = Estimator(root_type(_kinds(spec)), sizes)
    rows: list[tuple[str, Range]] = []
    total = match_total = ZERO
    for i, m in enumerate(spec.get("matchConditions") or []):
        c = est.estimate(str(m["expression"]))[0]
        rows.append((f"spec.matchConditions[{i}].expression", c))
        match_total = match_total + c
    for i, v in enumerate(spec.get("variables") or []):
        c, info = est.estimate(str(v["expression"]))
        est.variables[str(v["name"])] = info
        rows.append((f"spec.variables[{i}].expression", c))
        total = total + c
    for i, v in enumerate(spec.get("validations") or []):
        for key in ("expression", "messageExpression"):
            if v.get(key):
                c = est.estimate(str(v[key]))[0]
                rows.append((f"spec.validations[{i}].{key}", c))
                total = total + c
    return PolicyCost(tuple(rows), total, match_total)
