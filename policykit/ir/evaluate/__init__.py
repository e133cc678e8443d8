"""The reference semantics of the IR (``docs/semantics.md``), as Python closures.

* :mod:`~policykit.ir.evaluate.closures`: :class:`Evaluator`, IR → closures;
* :mod:`~policykit.ir.evaluate.joins`: joins over the inventory, indexed;
* :mod:`~policykit.ir.evaluate.remember`: what loops over the inventory remember;
* :mod:`~policykit.ir.evaluate.selector`: :func:`selector_matches`;
* :mod:`~policykit.ir.evaluate.env`: the environment (variables → values).

The engine :mod:`policykit.engines.native` runs packs over documents with it,
and :class:`policykit.ir.passes.Folder` folds constants with it.
"""

from policykit.ir.evaluate.closures import Evaluator, nodes_supported
from policykit.ir.evaluate.env import INVENTORY, Env, PredFn, ValueFn, identity
from policykit.ir.evaluate.selector import selector_matches

__all__ = [
    "INVENTORY",
    "Env",
    "Evaluator",
    "PredFn",
    "ValueFn",
    "identity",
    "nodes_supported",
    "selector_matches",
]
