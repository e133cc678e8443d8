"""Constant folding for the Rego compiler: a node without paths, parameters or
inventory reads is evaluated at build time by the reference semantics."""

from __future__ import annotations

from typing import Any

from policykit.engines.native import _Compiler as _NativeCompiler
from policykit.ir import nodes as ir


def is_constant(node: ir.Node) -> bool:
    """No paths and no parameters below: the value is known at compile time."""
    return not any(isinstance(n, (ir.Path, ir.Param, ir.Objects)) for n in ir.walk(node))


def constant_value(node: ir.Value) -> Any:
    return _NativeCompiler({}).value(node)({})


def constant_pred(node: ir.Pred) -> bool:
    return _NativeCompiler({}).pred(node)({})
