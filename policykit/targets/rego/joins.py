"""Joins over the inventory (policykit/ir/joins.py) as indexes built once.

A join's index is a rule without arguments, so OPA evaluates it once per
query (and caches it), as does regopy: an object from the join key (a
string, or an array of strings for several keys) to the positions in
``_inventory`` of the items with that key, in inventory order. It is
built by sorting [key, position] pairs and cutting them where the key
changes: linear after the sort, and without object comprehensions whose
values would conflict. Keys that are not strings (rare: numbers, where
1 == 1.0, booleans, null, composites) are not indexed: an object whose
key is not a string reads the inventory as written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from policykit.ir import nodes as ir
from policykit.ir.joins import Grouped, Join
from policykit.targets.rego import naming
from policykit.targets.rego import printer as pr
from policykit.targets.rego.core import (
    INVENTORY_IDS,
    INVENTORY_RULE,
    LIB_VALUES,
    OBJ,
    RegoBase,
    Stmts,
    Val,
)


class JoinCompiler(RegoBase):
    """Filters, counts and sums over the inventory that a join key narrows."""

    def _pushed_scope(self, scope: list[str], compile_: Callable[[], Any]) -> Any:
        outer = self._scope
        self._scope = scope
        try:
            return compile_()
        finally:
            self._scope = outer

    def _keys(self, keys: Sequence[ir.Value]) -> tuple[Stmts, str] | None:
        """Statements binding the join key (strings only), and the key term;
        None when a key can never be a string."""
        stmts: Stmts = []
        terms: list[str] = []
        for k in keys:
            sk, tk, ty = self.value(k)
            if ty not in ("any", "string"):
                return None
            v = self.local(*naming.value_names(k))
            stmts += [*sk, f"{v} := {tk}", f"is_string({v})"]
            terms.append(v)
        return stmts, terms[0] if len(terms) == 1 else "[" + ", ".join(terms) + "]"

    def _join_index(self, join: Join) -> str | None:
        """Emits the join's index rules; returns the name of the key → positions
        object (``<name>_keys`` holds each item's key, null if not indexed)."""
        var = join.var

        def item_side() -> tuple[Stmts, str] | None:
            only: Stmts = []
            for p in join.item_only:
                only += self.pred(p)
            keyed = self._keys(join.item_keys)
            return None if keyed is None else ([*only, *keyed[0]], keyed[1])

        keyed = self._pushed_scope([var], item_side)
        if keyed is None:
            return None
        self.uses_inventory = True
        words = [naming.value_names(k)[0] for k in join.item_keys]
        name = self.helper_name(["by_" + "_and_".join(words), "index"])
        k = self.local("key")
        inv = INVENTORY_RULE
        self.add_helper(
            [
                f"{name}_key({self.bound(var)}) := {k} if {{",
                *pr.indent([*keyed[0], f"{k} := {keyed[1]}"]),
                "} else := null",
            ]
        )
        self.add_helper(
            [
                f"# The key of each inventory item in the index {name} (null: not indexed).",
                f"{name}_keys := [{name}_key({inv}[i]) | some i in {positions(inv)}]",
            ]
        )
        self.add_helper(
            group_by(
                name,
                [
                    f"some i in numbers.range(0, count({name}_keys) - 1)",
                    f"k := {name}_keys[i]",
                    "k != null",
                ],
                "k",
            )
        )
        self.add_helper(get_or(f"{name}_at", name, "[]"))
        return name

    def _object_side(self, join: Join) -> tuple[Stmts, Stmts, str] | None:
        """(statements defining every object-side key, the same plus string
        guards, the key term)."""
        defined: Stmts = []
        for key in join.object_keys:
            sk, tk, ty = self.value(key)
            if ty == "missing":
                return None
            defined += [*sk, f"{self.local(*naming.value_names(key))} := {tk}"]
        keyed = self._keys(join.object_keys)
        if keyed is None:
            return None
        return defined, keyed[0], keyed[1]

    def _join_filter(self, n: ir.Filter, join: Join) -> Val | None:
        side = self._object_side(join)
        index = self._join_index(join) if side is not None else None
        if side is None or index is None:
            return None
        defined, guarded, key = side
        self._scope.append(n.var)
        rest: Stmts = []
        for p in join.rest:
            rest += self.pred(p)
        plain = self.pred(n.body)
        self._scope.pop()
        name = self.helper_name(naming.value_names(n), [n])
        params, args = self._signature(self._free([n]))
        k, me, r = self.local("key"), self.local("me"), self.local("matching")
        i, var = self.local("i"), self.bound(n.var)
        lib = self.use(LIB_VALUES)
        others = f"{lib}.others({INVENTORY_RULE}, {OBJ})"
        self.add_helper(
            [
                f"{name}({params}) := {r} if {{",
                *pr.indent([*guarded, f"{k} := {key}", f"{me} := {lib}.identity({OBJ})"]),
                f"\t{r} := [{var} |",
                *pr.indent(
                    [
                        f"some {i} in {index}_at({k})",
                        f"{var} := {INVENTORY_RULE}[{i}]",
                        f"{lib}.identity({var}) != {me}",
                        *rest,
                    ],
                    2,
                ),
                "\t]",
                f"}} else := {r} if {{",  # a key that is present but not a string
                *pr.indent([*defined, f"{r} := [{var} |"]),
                *pr.indent([f"some {var} in {others}", *plain], 2),
                "\t]",
                "} else := []",
            ]
        )
        return [], f"{name}({args})", "array"

    def _grouped(self, n: ir.Sum | ir.Count, g: Grouped) -> Val | None:
        side = self._object_side(g.join)
        index = self._join_index(g.join) if side is not None else None
        if side is None or index is None:
            return None
        defined, guarded, key = side

        def per_item() -> tuple[Stmts, str]:
            if g.term is None:
                return self.pred(g.body), "1"
            st, tt, ty = self.value(g.term)
            if ty not in ("any", "number"):
                return ["false"], "0"
            return st, tt

        body, head = self._pushed_scope([n.var], per_item)
        t = self.local("term")
        self.add_helper(
            [
                f"{index}_term({self.bound(n.var)}) := {t} if {{",
                *pr.indent([*body, f"{t} := {head}", f"is_number({t})"]),
                "} else := null",
            ]
        )
        inv = INVENTORY_RULE
        self.add_helper([f"{index}_terms := [{index}_term({inv}[i]) | some i in {positions(inv)}]"])
        self.add_helper(
            [
                f"# The {g.kind} over each key of the index {index}.",
                f"{index}_totals := {{k: sum([t |",
                f"\tsome i in {index}[k]",
                f"\tt := {index}_terms[i]",
                "\tt != null",
                f"]) | some k in object.keys({index})}}",
            ]
        )
        self.add_helper(get_or(f"{index}_total", f"{index}_totals", "0"))
        self.add_helper(
            [
                f"{index}_less(total, mine) := total if count(mine) == 0",
                "",
                f"{index}_less(total, mine) := total - sum(mine) if count(mine) > 0",
            ]
        )
        self.uses_inventory_ids = True
        plain = self._aggregate(g.kind, n, lambda: self._aggregate_body(n))
        name = self.helper_name([f"{c}_by_key" for c in naming.value_names(n)], [n])
        params, args = self._signature(self._free([n]))
        k, mine, r = self.local("key"), self.local("mine"), self.local("total")
        lib = self.use(LIB_VALUES)
        self.add_helper(
            [
                f"{name}({params}) := {r} if {{",
                *pr.indent(
                    [
                        *guarded,
                        f"{k} := {key}",
                        f"{mine} := [t |",
                        f"\tsome i in {INVENTORY_IDS}_at({lib}.identity({OBJ}))",
                        f"\t{index}_keys[i] == {k}",
                        f"\tt := {index}_terms[i]",
                        "\tt != null",
                        "]",
                        f"{r} := {index}_less({index}_total({k}), {mine})",
                    ]
                ),
                f"}} else := {r} if {{",  # a key that is present but not a string
                *pr.indent([*defined, f"{r} := {plain[1]}"]),
                "} else := 0",
            ]
        )
        return [], f"{name}({args})", "number"


def get_or(fn: str, obj: str, default: str) -> list[str]:
    """``fn(k)``: ``obj[k]``, else ``default``. Not ``object.get``: regopy's
    misses a key that is an array."""
    return [f"{fn}(k) := v if {{", f"\tv := {obj}[k]", f"}} else := {default}"]


def positions(array: str) -> str:
    """The positions of ``array`` (an empty array: 0 and -1, which index nothing)."""
    return f"numbers.range(0, count({array}) - 1)"


def group_by(name: str, body: Stmts, key: str) -> list[str]:
    """``name``: key → the positions ``i`` that ``body`` binds with that ``key``,
    ascending. Sorted [key, i] pairs are cut where the key changes; object
    comprehensions would refuse two different values for one key."""
    pairs, bounds = f"{name}_pairs", f"{name}_bounds"
    return [
        *pr.comprehension(f"{pairs} := sort([", f"[{key}, i]", body, "])"),
        "",
        f"{bounds} := array.concat(array.concat([0], [p |",
        f"\tsome p in numbers.range(1, count({pairs}) - 1)",
        f"\ta := {pairs}[p]",
        f"\tb := {pairs}[p - 1]",
        "\ta[0] != b[0]",
        f"]), [count({pairs})])",
        "",
        f"{name} := {{first[0]: [pair[1] |",
        "\tsome p in numbers.range(s, e - 1)",
        f"\tpair := {pairs}[p]",
        "] |",
        f"\tsome j in numbers.range(0, count({bounds}) - 2)",
        f"\ts := {bounds}[j]",
        f"\te := {bounds}[j + 1]",
        f"\tfirst := {pairs}[s]",
        "}",
    ]
