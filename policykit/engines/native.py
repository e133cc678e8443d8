"""The reference engine: runs packs over documents with the reference
semantics of :mod:`policykit.ir.evaluate`.

Each rule is compiled once into Python closures (no tree walking per object);
:func:`NativeEngine.evaluate` then costs a few dictionary look-ups per rule.
The semantics are those of ``docs/semantics.md``; every other target is tested
against this engine.

The evaluator (``_Compiler``), ``selector_matches``, ``INVENTORY``,
``identity``, ``uses_inventory`` and ``nodes_supported`` live in the IR layer
(:mod:`policykit.ir.evaluate`, :mod:`policykit.ir.reads`) and are re-exported
here for the code that imports them from this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from policykit.ir.check import check_pack
from policykit.ir.evaluate import (
    INVENTORY,
    Env,
    Evaluator,
    PredFn,
    ValueFn,
    identity,
    nodes_supported,
    selector_matches,
)
from policykit.ir.evaluate.joins import hashable as _hashable  # noqa: F401 (tests)
from policykit.ir.nodes import OBJECT_ROOT
from policykit.ir.reads import rule_reads_inventory, uses_inventory
from policykit.ir.rule import Pack, Rule
from policykit.model import Document, Finding, findings_of
from policykit.values import render_part

# the evaluator under its old name: the Rego and CEL compilers import it until
# they fold constants with policykit.ir.passes.Folder (issue 18, step 2)
_Compiler = Evaluator

__all__ = [
    "INVENTORY",
    "Env",
    "NativeEngine",
    "PredFn",
    "ValueFn",
    "check_pack",
    "compile_rule",
    "identity",
    "nodes_supported",
    "selector_matches",
    "uses_inventory",
]


@dataclass(slots=True)
class _CompiledRule:
    rule: Rule
    pack: str
    cond: PredFn
    parts: list[str | ValueFn]
    each: ValueFn | None
    each_var: str

    def message(self, env: Env) -> str:
        # render_part: a huge value costs no more than the message cap (Finding caps)
        return "".join(p if type(p) is str else render_part(p(env)) for p in self.parts)  # type: ignore[operator]


def compile_rule(
    rule: Rule, pack: str, params: Mapping[str, Any], *, remember: bool = True
) -> _CompiledRule:
    c = Evaluator(params, remember=remember)
    return _CompiledRule(
        rule=rule,
        pack=pack,
        cond=c.pred(rule.condition),
        parts=[p if isinstance(p, str) else c.value(p) for p in rule.message.parts],
        each=None if rule.each is None else c.value(rule.each.collection),
        each_var="" if rule.each is None else rule.each.var,
    )


class NativeEngine:
    """Evaluates packs over documents; the reference for every other engine."""

    def __init__(
        self,
        packs: Sequence[Pack],
        params: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        remember: bool = True,
    ) -> None:
        """``remember=False`` evaluates cross-object rules without remembering
        anything between inventory items (the plain reading of the semantics,
        n² times slower; for tests and benchmarks)."""
        params = params or {}
        self.packs = tuple(packs)
        self.effective_params: dict[str, dict[str, Any]] = {}
        self._by_kind: dict[str, list[_CompiledRule]] = {}
        self._any_kind: list[_CompiledRule] = []
        self.inventory: list[dict[str, Any]] = []
        for pack in self.packs:
            eff = check_pack(pack, params.get(pack.name, {}))
            self.effective_params[pack.name] = eff
            for rule in pack.rules:
                cr = compile_rule(rule, pack.name, eff, remember=remember)
                if rule.selector.kinds:
                    for k in rule.selector.kinds:
                        self._by_kind.setdefault(k, []).append(cr)
                else:
                    self._any_kind.append(cr)
        self._all = (self._by_kind, self._any_kind)

    def select_rules(self, which: Literal["all", "local", "inventory"] = "all") -> NativeEngine:
        """Evaluate from now on only the rules that read the inventory
        (``"inventory"``), only the others (``"local"``), or every rule; the
        compiled rules are shared. Returns this engine (also through a wrapper
        that delegates attributes, such as the CATALOG-016 template check).

        :mod:`policykit.parallel` evaluates the local rules while files are read
        and the inventory rules once every object is known; the findings of a
        document keep the order of :meth:`rules_for` over all rules."""
        by_kind, any_kind = self._all
        if which == "all":
            self._by_kind, self._any_kind = by_kind, any_kind
            return self
        want = which == "inventory"

        def keep(rules: list[_CompiledRule]) -> list[_CompiledRule]:
            return [cr for cr in rules if rule_reads_inventory(cr.rule) == want]

        self._by_kind = {k: kept for k, v in by_kind.items() if (kept := keep(v))}
        self._any_kind = keep(any_kind)
        return self

    def rule_order(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(pack, rule id) → where :meth:`rules_for` puts the rule among all
        rules: rules of any kind first, then those of the object's kind, each in
        pack order and rule order. Findings of one document tied on
        :meth:`~policykit.model.Finding.sort_key` keep this order in a serial run."""
        out: dict[tuple[str, str], tuple[int, int]] = {}
        for i, cr in enumerate(self._all[1]):
            out.setdefault((cr.pack, cr.rule.id), (0, i))
        for i, key in enumerate((p.name, r.id) for p in self.packs for r in p.rules):
            out.setdefault(key, (1, i))
        return out

    @property
    def uses_inventory(self) -> bool:
        return uses_inventory(self.packs)

    def set_inventory(self, objects: Sequence[dict[str, Any]]) -> None:
        """The objects ``Objects`` reads (every object of the run)."""
        self.inventory = list(objects)

    def rules_for(self, obj: dict[str, Any]) -> list[_CompiledRule]:
        kind = obj.get("kind")
        specific = self._by_kind.get(kind, []) if isinstance(kind, str) else []
        return self._any_kind + specific if specific else self._any_kind

    def evaluate_object(
        self, obj: dict[str, Any], source: str
    ) -> list[tuple[_CompiledRule, str, int | None]]:
        """(rule, message, item) for every finding about one object."""
        out: list[tuple[_CompiledRule, str, int | None]] = []
        for cr in self.rules_for(obj):
            if not selector_matches(cr.rule.selector, obj, source):
                continue
            env: Env = {OBJECT_ROOT: obj, INVENTORY: self.inventory}
            if cr.each is None:
                if cr.cond(env):
                    out.append((cr, cr.message(env), None))
                continue
            coll = cr.each(env)
            if type(coll) is not list:
                continue
            for i, item in enumerate(coll):
                env[cr.each_var] = item
                if cr.cond(env):
                    out.append((cr, cr.message(env), i))
        return out

    def evaluate(self, doc: Document) -> list[Finding]:
        hits = self.evaluate_object(doc.obj, doc.source)
        if not hits:  # the common case: no object reference to build
            return []
        return findings_of(doc, ((cr.rule, cr.pack, msg, item) for cr, msg, item in hits))

    def evaluate_all(self, docs: Iterable[Document]) -> list[Finding]:
        out: list[Finding] = []
        for d in docs:
            out.extend(self.evaluate(d))
        return out
