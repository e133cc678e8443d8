"""Backstage scaffolder templates held to the catalog rules (issue 17).

* :mod:`policykit.scaffolder.mapping`: which template parameter fills which
  field of the entity the template creates;
* :mod:`policykit.scaffolder.drift`: CATALOG-016, a parameter that accepts a
  value the catalog rules reject (a built-in check, see its docstring);
* :mod:`policykit.scaffolder.sync`: ``policykit scaffold sync`` rewrites the
  parameters' schemas from the compiled field schemas.

Not to be confused with :mod:`policykit.scaffold` (``policykit init``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from policykit.engines.base import Engine
    from policykit.ir.rule import Pack

CATALOG_PACK = "catalog"
"""The pack whose engines get CATALOG-016 (``policykit.scaffolder.drift.PACK``)."""


def with_template_check(
    engine: Engine, packs: Sequence[Pack], params: Mapping[str, Mapping[str, Any]]
) -> Engine:
    """``engine``, plus the catalog pack's built-in template check (CATALOG-016)
    when that pack is among ``packs``: what ``policykit check`` and
    :class:`policykit.Policy` run alike. Start-up (issue 21): the check and its
    imports (jsonschema) load only when the catalog pack is checked."""
    if not any(p.name == CATALOG_PACK for p in packs):
        return engine
    from policykit.scaffolder.drift import wrap

    return wrap(engine, packs, params)
