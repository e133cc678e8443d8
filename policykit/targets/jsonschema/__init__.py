"""IR → JSON Schema (draft 2020-12), for scaffolder- and catalog-time checks.

JSON Schema can say what a *single field* must look like — present, of a type,
equal to or one of some constants, bounded, of a length, matching a pattern —
and quantify over list items. So this target expresses exactly the rules made
of those pieces; the others are reported as not covered (with the reason), and
stay enforced in CI and at admission by the other targets.

A rule compiles to a schema that an object satisfies exactly when the rule has
*no* finding on it (``docs/semantics.md``):

* every leaf predicate is "the field is present and its value satisfies V";
  its positive form is ``at(path, V, required)``, its negation
  ``at(path, not V, optional)`` — a missing field makes every leaf false;
* ``not`` flips polarity, ``and``/``or`` become ``allOf``/``anyOf`` (De Morgan
  when negated); ``any``/``all`` become ``contains``/``items``;
* the selector becomes ``if``; parameters are inlined at build time.

Per pack, the build writes ``<pack>.schema.json`` (an ``allOf`` with one entry
per covered rule, ``title`` = rule id) and ``<pack>.fields.json`` (per entity
field, the schema a scaffolder form property can use, and whether the field is
required). ``index.json`` lists every rule as covered or not, with the reason.

Modules: ``schema`` (combinators, ``at``, the selector's schema), ``compiler``
(one rule), ``fields`` (``<pack>.fields.json``), ``pack`` (a pack, the files),
``pattern`` (the regex dialect as ECMA-262), ``simplify`` (exact rewrites).
"""

from policykit.ir.passes import fold_constant_keys as fold_rule
from policykit.targets.jsonschema.compiler import Leaf, SchemaCompiler
from policykit.targets.jsonschema.fields import (
    FieldRule,
    field_rules,
    form_message,
    single_field,
    with_messages,
)
from policykit.targets.jsonschema.pack import Covered, PackSchemas, build, compile_pack, dumps
from policykit.targets.jsonschema.schema import (
    DRAFT,
    MAX_PATH_SEGMENTS,
    Schema,
    all_of,
    any_of,
    at,
    negate,
    selector_schema,
)

__all__ = [
    "DRAFT",
    "MAX_PATH_SEGMENTS",
    "Covered",
    "FieldRule",
    "Leaf",
    "PackSchemas",
    "Schema",
    "SchemaCompiler",
    "all_of",
    "any_of",
    "at",
    "build",
    "compile_pack",
    "dumps",
    "field_rules",
    "fold_rule",
    "form_message",
    "negate",
    "selector_schema",
    "single_field",
    "with_messages",
]
