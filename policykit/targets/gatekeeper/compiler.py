"""Gatekeeper's Rego dialect: the Rego compiler with Gatekeeper's entry points.

A ConstraintTemplate's module answers ``violation`` (a set of ``{msg,
details}``) about ``input.review.object`` and reads the synced objects from
``data.inventory`` (cluster-scoped under ``cluster/<group-version>/<kind>``,
namespaced under ``namespace/<ns>/<group-version>/<kind>``), as in
open-policy-agent/gatekeeper ``pkg/target/target.go`` and the "Replicating
data" documentation. Everything else is the OPA compiler's output.
"""

from __future__ import annotations

from typing import Any

from policykit.ir.rule import Pack, Rule
from policykit.targets.rego import printer as pr
from policykit.targets.rego.compiler import INVENTORY_RULE, RegoCompiler, RegoOptions

TARGET_NAME = "gatekeeper"


class GatekeeperCompiler(RegoCompiler):
    """One pack (in practice one rule) as a ConstraintTemplate's Rego."""

    target = TARGET_NAME

    def __init__(self, pack: Pack, options: RegoOptions) -> None:
        super().__init__(pack, options)
        self._meta: dict[str, Any] = {}

    def rule_entry(self, fn: str, rule: Rule, meta: dict[str, Any]) -> None:
        """No partial set per severity: the Constraint's enforcementAction says
        what a violation does; the rule's METADATA goes on ``violation``."""
        self._meta = meta

    def inventory_rule(self) -> list[str]:
        """Gatekeeper's synced objects (``data.inventory``) as one list."""
        return [
            "# Gatekeeper's synced objects (data.inventory), cluster-scoped and namespaced.",
            f"{INVENTORY_RULE} := array.concat(_inventory_cluster, _inventory_namespaced)",
            "",
            "_inventory_cluster := [o |",
            "\tsome gv in object.keys(data.inventory.cluster)",
            "\tsome k in object.keys(data.inventory.cluster[gv])",
            "\tsome o in data.inventory.cluster[gv][k]",
            "]",
            "",
            "_inventory_namespaced := [o |",
            "\tsome ns in object.keys(data.inventory.namespace)",
            "\tsome gv in object.keys(data.inventory.namespace[ns])",
            "\tsome k in object.keys(data.inventory.namespace[ns][gv])",
            "\tsome o in data.inventory.namespace[ns][gv][k]",
            "]",
        ]

    def entry_points(self) -> None:
        """``violation`` over the object under review."""
        details = '{"rule": f.id, "pack": f.pack, "severity": f.severity}'
        self.module.rule(
            'violation contains {"msg": f.msg, "details": ' + details + "}",
            ["some f in findings(input.review.object)"],
            pr.metadata_block(self._meta or {"title": self.pack.name}),
        )


def compile_template_rego(pack: Pack, options: RegoOptions) -> str:
    """The Rego of a ConstraintTemplate for ``pack``."""
    return GatekeeperCompiler(pack, options).compile()
