"""Backstage scaffolder templates held to the catalog rules (issue 17).

* :mod:`policykit.scaffolder.mapping`: which template parameter fills which
  field of the entity the template creates;
* :mod:`policykit.scaffolder.drift`: CATALOG-016, a parameter that accepts a
  value the catalog rules reject (a built-in check, see its docstring);
* :mod:`policykit.scaffolder.sync`: ``policykit scaffold sync`` rewrites the
  parameters' schemas from the compiled field schemas.

Not to be confused with :mod:`policykit.scaffold` (``policykit init``).
"""
