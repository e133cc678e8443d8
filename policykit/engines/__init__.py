"""Evaluators: the reference engine and the real engines each target runs on.

Load order matters: regopy's ``librego_shared.so`` replaces the allocator of
native code loaded *after* it, and cel-cpp (``cel_expr_python``) loaded after
regopy frees memory it did not allocate ("free(): invalid pointer" on a list
membership test of about 7+ items). Loading cel-cpp first is safe for both, so
the CEL extension is loaded here, before any engine can import regopy. If the
program imported regopy before policykit, the CEL engine refuses to run (PK005)
instead of crashing (docs/engines.md; tests/test_engines_load_order.py).
"""

import sys

CEL_LOADED_AFTER_REGOPY = (
    "regopy.rego_shared" in sys.modules and "cel_expr_python.cel" not in sys.modules
)

from cel_expr_python import cel as _cel  # noqa: E402, F401  (must precede regopy)

from policykit.engines.base import DecidingEngine as DecidingEngine  # noqa: E402
from policykit.engines.base import Engine as Engine  # noqa: E402
