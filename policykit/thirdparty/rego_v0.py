"""Moved to :mod:`policykit.engines.rego_v0` (the Gatekeeper template runner in
``engines`` upgrades v0 sources too, and ``engines`` does not import
``thirdparty``). Kept for existing imports; issue 18 step 4 removes it."""

from __future__ import annotations

from policykit.engines.rego_v0 import RegoUpgradeError as RegoUpgradeError
from policykit.engines.rego_v0 import Token as Token
from policykit.engines.rego_v0 import is_v1 as is_v1
from policykit.engines.rego_v0 import tokenize as tokenize
from policykit.engines.rego_v0 import upgrade as upgrade
