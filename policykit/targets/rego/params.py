"""Parameters as Rego: the bundle's data document, and the same values as a
module for engines that cannot load data faithfully (regopy)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from policykit.ir.rule import Pack
from policykit.targets.rego import printer as pr


def params_module(packs: Sequence[Pack], params: dict[str, dict[str, Any]], root: str) -> str:
    """Parameters as a module (``<root>.params``): the same document as the
    bundle's data, for engines that cannot load data faithfully (regopy)."""
    mod = pr.Module(f"{root}.params")
    for p in packs:
        mod.add([f"{p.name} := {pr.term(params.get(p.name, p.defaults()))}"])
    return mod.text()


def params_data(
    packs: Sequence[Pack], params: dict[str, dict[str, Any]], root: str
) -> dict[str, Any]:
    """The bundle's data document: ``{<root...>: {"params": {pack: values}}}``."""
    return under_root(root, {"params": {p.name: params.get(p.name, p.defaults()) for p in packs}})


def under_root(root: str, doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` placed at ``data.<root>`` (``a.b`` → ``{"a": {"b": doc}}``)."""
    for seg in reversed(root.split(".")):
        doc = {seg: doc}
    return doc
