"""Constant folding for the Rego compiler: a node without paths, parameters or
inventory reads is evaluated at build time by the reference semantics, through
the IR pass layer (:class:`policykit.ir.passes.Folder`). Rego reads parameters
at run time (``data.<root>.params``), so a parameter is not a constant here."""

from __future__ import annotations

from typing import Any

from policykit.ir import nodes as ir
from policykit.ir import passes

_FOLDER = passes.Folder(None)  # parameters are not inlined


def is_constant(node: ir.Node) -> bool:
    """No paths and no parameters below: the value is known at compile time."""
    return passes.is_constant(node, params=False)


def constant_value(node: ir.Value) -> Any:
    return _FOLDER.value(node)


def constant_pred(node: ir.Pred) -> bool:
    return _FOLDER.pred(node)
