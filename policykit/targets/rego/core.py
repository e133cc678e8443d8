"""What every part of the Rego compiler shares: options, the compiled-value
shape, scopes, helper functions and their names (:mod:`.naming`), and the
loops that aggregates and quantifiers are built on."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from policykit.ir import nodes as ir
from policykit.ir.rule import Pack
from policykit.targets.base import Compiler
from policykit.targets.rego import naming
from policykit.targets.rego import printer as pr
from policykit.targets.rego.fold import constant_pred, constant_value, is_constant
from policykit.values import MISSING, json_type

OBJ = "obj"
INVENTORY_RULE = "_inventory"
INVENTORY_IDS = "_inventory_ids"
LIB_VALUES = "values"
LIB_QUANTITY = "quantity"
ROOT_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")

Stmts = list[str]
Val = tuple[Stmts, str, str]
"""Compiled value: guard statements, the term, and its semantic type (``any``,
a JSON type name, or ``missing`` when it can never be present)."""
MISSING_VAL: Val = (["false"], "null", "missing")
_SWAP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass(frozen=True)
class RegoOptions:
    """Where compiled code lives and reads its parameters from."""

    root: str = "policykit"
    params_ref: str | None = None  # default: data.<root>.params.<pack>
    package_name: str | None = None  # default: <root>.<pack>
    lib_root: str | None = None  # default: <root>.lib

    def package(self, pack: str) -> str:
        return self.package_name or f"{self.root}.{pack}"

    def lib(self, name: str) -> str:
        return f"data.{self.lib_root or self.root + '.lib'}.{name}"

    def params(self, pack: str) -> str:
        return self.params_ref or pr.ref(f"data.{self.root}.params", [pack])


class RegoBase(Compiler):
    """State and shared machinery; the node methods are in the subclasses
    (:mod:`.joins`, :mod:`.expressions`, :mod:`.predicates`, :mod:`.compiler`)."""

    target = "rego"

    def __init__(self, pack: Pack, options: RegoOptions) -> None:
        super().__init__()
        self.pack = pack
        self.opts = options
        self.module = pr.Module(options.package(pack.name))
        self._helpers: list[list[str]] = []
        self._aliases: dict[str, str] = {}  # a helper's placeholder → its identical twin's
        self._defined: dict[str, str] = {}  # a helper's text (named itself) → its placeholder
        self._shared: set[str] = set()  # helpers that several rules call
        self._n = 0
        self._prefix = ""
        self._scope: list[str] = [OBJ]
        self.uses_inventory = False
        self.uses_inventory_ids = False
        self._fallback_next = False  # the next Default compiled is another's fallback
        self.index_joins = True  # False: every loop over the inventory as written (tests)

    # --- names (policykit/targets/rego/naming.py) ---------------------------------------

    def _next(self) -> int:
        self._n += 1
        return self._n

    def local(self, *candidates: str) -> str:
        """A local variable named after what it holds."""
        return naming.local(candidates, self._next())

    def bound(self, name: str) -> str:
        """A variable the DSL bound (``obj`` is the object under review)."""
        return OBJ if name == OBJ else naming.var(name)

    def helper_name(self, candidates: Sequence[str], nodes: Sequence[ir.Node] = ()) -> str:
        """A helper of the current rule, named after what it computes (then
        after the variables it reads: ``…_of_c``, to tell twins apart)."""
        roots = [naming.bare(v) for v in self._free(nodes) if v != OBJ] or (
            ["obj"] if self._free(nodes) else []
        )
        of = f"{candidates[0]}_of_{'_and_'.join(roots)}" if candidates and roots else ""
        extra = [of] if of and not of[-1].isdigit() else []
        return naming.helper(self._prefix, [*candidates, *extra], self._next())

    def add_helper(self, lines: list[str]) -> None:
        """Adds a helper (its rules separated by blank lines), unless the pack
        already has one that reads the same: the DSL repeats a sub-expression
        wherever a Python function is called, the Rego defines it once (and a
        helper that several rules call is named without a rule's name)."""
        named = naming.name_locals(self.resolve("\n".join(lines)).split("\n"))
        text = "\n".join(named)
        own = naming.defines(text)
        if own is not None:
            key = text.replace(own, "\x00")
            twin = self._defined.get(key)
            if twin is not None:
                self._aliases[own] = twin
                if naming.prefix_of(twin) != self._prefix:
                    self._shared.add(twin)
                return
            self._defined[key] = own
        self._helpers.append(named)

    def resolve(self, text: str) -> str:
        """``text`` calling each helper's first twin."""
        return naming.resolve(text, self._aliases)

    def use(self, lib: str) -> str:
        self.module.imports.add(self.opts.lib(lib))
        return lib

    # --- helper functions ----------------------------------------------------------------

    def _free(self, nodes: Sequence[ir.Node]) -> list[str]:
        roots: set[str] = set()
        for n in nodes:
            for sub in ir.walk(n):
                if isinstance(sub, ir.Path):
                    roots.add(OBJ if sub.root == ir.OBJECT_ROOT else sub.root)
                elif isinstance(sub, ir.Objects):  # the object under review is left out
                    roots.add(OBJ)
        return [v for v in self._scope if v in roots]

    def _signature(self, free: list[str]) -> tuple[str, str]:
        """(parameter list, argument list) of a helper over ``free`` variables."""
        if not free:  # a helper over constants and parameters only
            return "_", "null"
        names = ", ".join(self.bound(v) for v in free)
        return names, names

    def helper_pred(
        self, candidates: Sequence[str], bodies: list[Stmts], nodes: Sequence[ir.Node]
    ) -> str:
        """A helper true when any body holds; returns the call expression."""
        name = self.helper_name(candidates, nodes)
        params, args = self._signature(self._free(nodes))
        lines: list[str] = []
        for body in bodies:
            lines += ["", f"{name}({params}) if {{", *pr.indent(body or ["true"]), "}"]
        self.add_helper(lines[1:])
        return f"{name}({args})"

    # --- dispatch with constant folding ---------------------------------------------------

    def value(self, node: ir.Value) -> Val:
        if is_constant(node):
            return self._constant(constant_value(node))
        result: Val = self.dispatch("v", node)
        return result

    def pred(self, node: ir.Pred) -> Stmts:
        if is_constant(node):
            return ["true"] if constant_pred(node) else ["false"]
        result: Stmts = self.dispatch("p", node)
        return result

    def _constant(self, v: Any) -> Val:
        if v is MISSING:
            return MISSING_VAL
        if isinstance(v, list):
            # literal lists go through erase(): OPA's type checker would otherwise
            # type their items and reject refs such as item.name on a string
            return [], f"{self.use(LIB_VALUES)}.erase({pr.term(v)})", "array"
        return [], pr.term(v), json_type(v)

    def _infix(self, a: str, op: str, b: str, name: str = "left") -> Stmts:
        """``a op b`` as a statement that does not start with ``(`` or ``-``:
        regopy reads such a line as continuing the one before it (a call on the
        previous term), so the sides are swapped or the left one is named."""
        if not a.startswith(("(", "-")):
            return [f"{a} {op} {b}"]
        if not b.startswith(("(", "-")):
            return [f"{b} {_SWAP[op]} {a}"]
        t = self.local(name)
        return [f"{t} := {a}", f"{t} {op} {b}"]

    def bound_once(self, node: ir.Value, term: str) -> tuple[Stmts, str]:
        """``term`` (the value of ``node``) as a variable that guards and uses
        can share: ``v := term`` unless it is a variable or a constant already.
        Only for a term the same body then needs defined: binding an undefined
        term makes the body undefined, exactly as using it does."""
        bare = isinstance(node, ir.Path) and not node.segments  # a bound variable
        if bare or naming.is_local(term) or is_constant(node):
            return [], term
        v = self.local(*naming.value_names(node))
        return [f"{v} := {term}"], v

    # --- loops ------------------------------------------------------------------------------

    def _collection(self, coll: ir.Value, var: str) -> Stmts | None:
        """Statements binding ``var`` to each item; None if never a list."""
        sc, tc, ty = self.value(coll)
        if ty not in ("any", "array"):
            return None
        c = self.local(*naming.value_names(coll))
        return [*sc, f"{c} := {tc}", f"is_array({c})", f"some {self.bound(var)} in {c}"]

    def _aggregate(
        self, fn: str, n: ir.Count | ir.Sum, inner: Callable[[], tuple[Stmts, str]]
    ) -> Val:
        """``fn([head | some var in coll; ...])`` in a helper that is 0 for non-lists."""
        sc, tc, ty = self.value(n.collection)
        if ty not in ("any", "array"):
            return [], "0", "number"
        name = self.helper_name(naming.value_names(n), [n])
        params, args = self._signature(self._free([n]))
        c = self.local(*naming.value_names(n.collection))
        result = self.local("n" if fn == "count" else "total")
        self._scope.append(n.var)
        body, head = inner()
        self._scope.pop()
        self.add_helper(
            [
                f"{name}({params}) := {result} if {{",
                *pr.indent([*sc, f"{c} := {tc}", f"is_array({c})", f"{result} := {fn}([{head} |"]),
                *pr.indent([f"some {self.bound(n.var)} in {c}", *body], 2),
                "\t])",
                "} else := 0",
            ]
        )
        return [], f"{name}({args})", "number"

    def _aggregate_body(self, n: ir.Sum | ir.Count) -> tuple[Stmts, str]:
        """The body and head of an aggregate's comprehension (its var in scope)."""
        if isinstance(n, ir.Count):
            return self.pred(n.body), self.bound(n.var)
        st, tt, ty = self.value(n.term)
        if ty not in ("any", "number"):
            return ["false"], "0"
        t = self.local(*naming.value_names(n.term))
        return [*st, f"{t} := {tt}", f"is_number({t})"], t


def is_number_value(term: str) -> bool:
    """Whether ``term`` is a number literal."""
    return re.fullmatch(r"-?[0-9][0-9.eE+-]*", term) is not None


def operand(node: ir.Value, text: str) -> str:
    """``text`` as the operand of an infix operator: an arithmetic value (itself
    infix) is parenthesised, everything else is a term (opa fmt's rule)."""
    return f"({text})" if isinstance(node, ir.Arith) and " " in text else text
