"""The capability table as data (``capabilities.json``: feature x target,
``yes``/``partial``/``no``/``skip``) and the features a rule uses.

The compilers read it (the JSON Schema target refuses what the table marks
``no``), and :mod:`policykit.targets.capabilities` builds its check on it; it
imports no compiler, so neither imports the other.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from policykit.ir.passes import node_features
from policykit.ir.rule import Rule

Level = str  # "yes" | "partial" | "no" | "skip"


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(__file__).with_name("capabilities.json").read_text())
    return data


def targets() -> list[str]:
    return list(table()["targets"])


def level(feature: str, target: str) -> Level:
    lv: str = table()["features"][feature][target]
    return lv


def features_of(rule: Rule) -> set[str]:
    """The table's features a rule uses: the IR's (:func:`policykit.ir.passes.node_features`)
    and what the rule's kinds and source allow at admission."""
    from policykit.k8s.kinds import lookup
    from policykit.targets.k8s.manifests import RUNTIME_KINDS, admission_applicable

    out = node_features(rule)
    why = admission_applicable(rule)
    if why:
        out.add("RuntimeOnly" if why in RUNTIME_KINDS.values() else "BackstageSource")
    elif any(k not in RUNTIME_KINDS and lookup(k) is None for k in rule.selector.kinds):
        out.add("UnknownKind")
    return out
