"""IR → Rego v1, one module per pack, reproducing docs/semantics.md.

Shape of a compiled pack (package ``<root>.<pack>``)::

    _cat_001(obj) := [f | <selector>; <condition>; f := {"id": ..., "msg": ...}]
    findings(obj) := [f | some fs in [_cat_001(obj), ...]; some f in fs]
    violations := findings(input)                      # one object as input
    batch := [findings(obj) | some obj in input.objects]   # many objects
    deny contains f if { some f in _cat_001(input) }    # with METADATA, per rule

The compiler is split by job: :mod:`.core` (options, scopes, helpers, loops),
:mod:`.joins` (inventory joins as indexes), :mod:`.expressions` (values),
:mod:`.predicates` (conditions), :mod:`.naming` (names from the DSL), this
module (selectors, messages, rules, the pack's entry points), :mod:`.entry`
(the ``main`` module and the agents' decision) and :mod:`.params`.
Gatekeeper's dialect is :class:`policykit.targets.gatekeeper.compiler.GatekeeperCompiler`.

Rules are functions of the object (no ``with input as``: it crashes regopy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from policykit import __version__
from policykit.ir.rule import Pack, Rule, Selector
from policykit.targets.rego import naming
from policykit.targets.rego import printer as pr
from policykit.targets.rego.core import INVENTORY_IDS as INVENTORY_IDS
from policykit.targets.rego.core import INVENTORY_RULE as INVENTORY_RULE
from policykit.targets.rego.core import LIB_VALUES as LIB_VALUES
from policykit.targets.rego.core import OBJ as OBJ
from policykit.targets.rego.core import ROOT_RE as ROOT_RE
from policykit.targets.rego.core import RegoOptions as RegoOptions
from policykit.targets.rego.core import Stmts
from policykit.targets.rego.entry import NOT_AN_OBJECT as NOT_AN_OBJECT
from policykit.targets.rego.entry import decision_rules as decision_rules
from policykit.targets.rego.entry import main_module as main_module
from policykit.targets.rego.joins import get_or, group_by
from policykit.targets.rego.params import params_data as params_data
from policykit.targets.rego.params import params_module as params_module
from policykit.targets.rego.params import under_root as under_root
from policykit.targets.rego.predicates import PredicateCompiler


class RegoCompiler(PredicateCompiler):
    """Compiles one pack for OPA; ``v_<Node>`` for values, ``p_<Node>`` for
    conditions. The entry points are hooks a dialect overrides
    (:meth:`rule_entry`, :meth:`inventory_rule`, :meth:`entry_points`)."""

    target = "rego"

    def selector(self, sel: Selector) -> Stmts:
        out: Stmts = []
        if sel.source == "backstage":
            out.append(f"{self.use(LIB_VALUES)}.is_backstage({OBJ})")
        elif sel.source == "kubernetes":
            out.append(f"not {self.use(LIB_VALUES)}.is_backstage({OBJ})")
        if sel.kinds:
            out.append(f"{OBJ}.kind in {pr.string_set(sel.kinds)}")
        if sel.api_versions:
            pats = pr.term(list(sel.api_versions))
            out.append(f"{self.use(LIB_VALUES)}.api_version_any({pats}, {OBJ}.apiVersion)")
        if sel.namespaces:
            pats = pr.term(list(sel.namespaces))
            out.append(f"{self.use(LIB_VALUES)}.glob_any({pats}, values.namespace({OBJ}))")
        if sel.exclude_namespaces:
            pats = pr.term(list(sel.exclude_namespaces))
            out.append(f"not {self.use(LIB_VALUES)}.excluded({pats}, {OBJ})")
        for k, v in sel.labels:
            out.append(f"{pr.ref(OBJ, ['metadata', 'labels', k])} == {pr.string(v)}")
        if sel.entity_types:
            out.append(f"{OBJ}.spec.type in {pr.string_set(sel.entity_types)}")
        return out

    def message(self, rule: Rule) -> tuple[Stmts, str]:
        parts: list[str] = []
        for part in rule.message.parts:
            if isinstance(part, str):
                parts.append(pr.string(part))
                continue
            names = naming.value_names(part)
            name = self.helper_name([f"{n}_text" for n in names], [part])
            params, args = self._signature(self._free([part]))
            s, t, _ = self.value(part)
            v = self.local(*names)
            self.add_helper(
                [
                    f"{name}({params}) := {self.use(LIB_VALUES)}.render({v}) if {{",
                    *pr.indent([*s, f"{v} := {t}"]),
                    '} else := ""',
                ]
            )
            parts.append(f"{name}({args})")
        if not parts:
            return [], '""'
        if len(parts) == 1 and rule.message.parts and isinstance(rule.message.parts[0], str):
            return [], parts[0]
        return [], 'concat("", [' + ", ".join(parts) + "])"

    def compile_rule(self, rule: Rule) -> str:
        """Adds the rule's function and partial-set contribution; returns its name."""
        fn = "_" + rule.id.lower().replace("-", "_")
        self._prefix = fn
        self._scope = [OBJ]
        body: Stmts = self.selector(rule.selector)
        finding: dict[str, str] = {
            "id": pr.string(rule.id),
            "pack": pr.string(self.pack.name),
            "severity": pr.string(rule.severity),
        }
        f = self.local("f", "finding")
        if rule.each is not None:
            idx = self.local("i", "index")
            sc, tc, _ = self.value(rule.each.collection)
            c = self.local(*naming.value_names(rule.each.collection))
            # not `some i, x in c`: regopy rejects two-variable `some` in comprehensions
            body += [
                *sc,
                f"{c} := {tc}",
                f"is_array({c})",
                f"some {idx}",
                f"{self.bound(rule.each.var)} := {c}[{idx}]",
            ]
            self._scope.append(rule.each.var)
            finding["item"] = idx
        body += self.pred(rule.condition)
        sm, msg = self.message(rule)
        body += sm
        finding["msg"] = msg
        obj = "{" + ", ".join(f'"{k}": {finding[k]}' for k in sorted(finding)) + "}"
        body.append(f"{f} := {obj}")
        self.module.add(
            [
                f"# Findings of rule {rule.id} about one object.",
                *naming.name_locals(
                    self.resolve(
                        "\n".join(pr.comprehension(f"{fn}({OBJ}) := [", f, body, "]"))
                    ).split("\n")
                ),
            ]
        )
        for h in self._helpers:
            self.module.add(h)
        self._helpers = []
        meta = {
            "title": rule.title,
            "description": rule.description,
            "custom": {
                "id": rule.id,
                "severity": rule.severity,
                "pack": self.pack.name,
                "pack_version": self.pack.version,
                "tags": list(rule.tags),
                "remediation": rule.remediation,
            },
        }
        self.rule_entry(fn, rule, meta)
        return fn

    def rule_entry(self, fn: str, rule: Rule, meta: dict[str, Any]) -> None:
        """OPA: the rule's findings in the partial set named by its severity."""
        self.module.rule(
            f"{rule.severity} contains f", [f"some f in {fn}(input)"], pr.metadata_block(meta)
        )

    def inventory_rule(self) -> list[str]:
        """``_inventory``: every object the target can see, as a list."""
        ref = f"data.{self.opts.root}.inventory"
        return [
            f"# The inventory the bundle's user supplies as {ref} (a list; none: empty).",
            f"{INVENTORY_RULE} := x if {{",
            f"\tx := {ref}",
            "\tis_array(x)",
            "} else := []",
        ]

    def compile(self) -> str:
        self.module.header = [
            *pr.metadata_block(
                {
                    "title": f"policykit pack {self.pack.name}",
                    "description": self.pack.description,
                    "custom": {
                        "pack": self.pack.name,
                        "version": self.pack.version,
                        "generator": f"policykit {__version__}",
                    },
                }
            ),
        ]
        names = [self.compile_rule(r) for r in self.pack.rules]
        if self.uses_inventory:
            self.module.add(self.inventory_rule())
        if self.uses_inventory_ids:
            inv = INVENTORY_RULE
            pairs = [
                f"some i in numbers.range(0, count({inv}) - 1)",
                f"k := {self.use(LIB_VALUES)}.identity({inv}[i])",
            ]
            self.module.add(
                [
                    "# The positions in the inventory of each identity (kind, namespace, name).",
                    *group_by(INVENTORY_IDS, pairs, "k"),
                ]
            )
            self.module.add(get_or(f"{INVENTORY_IDS}_at", INVENTORY_IDS, "[]"))
        calls = ", ".join(f"{n}({OBJ})" for n in names)
        self.module.add(
            [
                "# Findings of every rule of the pack about one object, in rule order.",
                *pr.comprehension(
                    f"findings({OBJ}) := [", "f", [f"some fs in [{calls}]", "some f in fs"], "]"
                ),
            ]
        )
        self.entry_points()
        return naming.name_helpers(naming.share(self.resolve(self.module.text()), self._shared))

    def entry_points(self) -> None:
        """OPA: ``violations`` for one object, ``batch`` for ``input.objects``."""
        self.module.add(
            [
                "# Entry point for one object as input (OPA's API, admission).",
                "violations := findings(input)",
            ]
        )
        self.module.add(
            [
                "# Entry point for many objects: input.objects, one result list per object.",
                f"batch := [findings({OBJ}) | some {OBJ} in input.objects]",
            ]
        )


def compile_pack(pack: Pack, options: RegoOptions | None = None) -> str:
    """The Rego v1 module of one pack."""
    return RegoCompiler(pack, options or RegoOptions()).compile()


def library(options: RegoOptions) -> dict[str, str]:
    """The Rego helper library with its packages moved under ``options.root``."""
    from policykit.resources import rego_library

    out: dict[str, str] = {}
    lib_root = options.lib_root or f"{options.root}.lib"
    for path, text in rego_library().items():
        if lib_root != "policykit.lib":
            text = text.replace("package policykit.lib.", f"package {lib_root}.")
            text = text.replace("data.policykit.lib.", f"data.{lib_root}.")
        out[path.replace("policykit/lib/", lib_root.replace(".", "/") + "/", 1)] = text
    return out


def compile_packs(packs: Sequence[Pack], options: RegoOptions | None = None) -> dict[str, str]:
    """Every module a bundle needs: bundle path → Rego text (sorted, deterministic)."""
    opts = options or RegoOptions()
    base = opts.root.replace(".", "/")
    modules = dict(library(opts))
    for p in packs:
        modules[f"{base}/{p.name}/policy.rego"] = compile_pack(p, opts)
    modules[f"{base}/main/main.rego"] = main_module(packs, opts)
    return dict(sorted(modules.items()))


REGOPY_PATTERN = 'pattern(p) := replace(p, base64.decode("XA=="), base64.decode("XFw="))'


REGOPY_SWAPS = (
    ("\npattern(p) := p\n", "\n" + REGOPY_PATTERN + "\n"),
    (
        "\n_beyond_int64(v) := _signed(v < 0, format_int(abs(v), 10))\n",
        "\n_beyond_int64(v) := json.marshal(v)\n",
    ),
)


def regopy_modules(modules: Mapping[str, str]) -> dict[str, str]:
    """``modules`` as regopy must run them: ``values.pattern`` doubles
    backslashes, because regopy's ``regex.match`` unescapes a pattern held in a
    string once, and a number beyond int64 is rendered as JSON spells it,
    because regopy's ``format_int`` wraps there (docs/engines.md). Everything
    else is unchanged."""
    out = dict(modules)
    for old, new in REGOPY_SWAPS:
        hits = [path for path, text in out.items() if old in text]
        if len(hits) != 1:
            raise AssertionError(f"expected one {old.strip()!r} in the library, found {len(hits)}")
        out[hits[0]] = out[hits[0]].replace(old, new)
    return out
