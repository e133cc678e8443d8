"""The fast exact path of the guarded YAML reader (issue 21, item 3).

PyYAML's C loader parses and composes in C, but it calls back into Python to
resolve the tag of every node and builds the values in Python through the
general constructor (generators, recursion bookkeeping, merge-key flattening
per mapping). For the documents policykit reads, that is two thirds of the cost
of ``yaml.load``. Two shortcuts give the *same* values:

* :class:`FastResolve`: a node's implicit tag is a pure function of its plain
  value when no path resolver is registered (``BaseResolver.resolve`` in
  PyYAML's ``resolver.py``), so short values are looked up in a memo; the
  path-resolver hooks (``descend_resolver``/``ascend_resolver``), which return
  at once without path resolvers upstream, cost no Python call;
* :func:`build`: a document whose nodes carry only the tags a JSON value needs
  (``str``, ``null``, ``bool``, ``int``, ``float``, ``seq``, ``map``) is built
  by one recursive function, calling the loader's own constructors for
  ``bool``/``int``/``float`` (the guards of :mod:`policykit.loader.yamlsafe`).
  Anything else (merge keys ``<<``, ``=`` keys, ``!!set``, timestamps, custom
  tags, an unhashable key, a scalar constructor that fails, nesting deeper than
  :data:`MAX_DEPTH`) raises :class:`Fallback`, and the caller constructs the
  document with PyYAML's ``construct_document`` exactly as before, so every
  error message is PyYAML's.

Aliases (the same node object met twice) give the same Python object, as
PyYAML's ``constructed_objects`` memo does. ``tests/test_loader_fastyaml.py``
holds both shortcuts to plain PyYAML over drawn documents and every fixture.
"""

from __future__ import annotations

from typing import Any, ClassVar

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

STR = "tag:yaml.org,2002:str"
NULL = "tag:yaml.org,2002:null"
BOOL = "tag:yaml.org,2002:bool"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
SEQ = "tag:yaml.org,2002:seq"
MAP = "tag:yaml.org,2002:map"
_SPECIAL_KEYS = ("tag:yaml.org,2002:merge", "tag:yaml.org,2002:value")
_resolve: Any = BaseResolver.resolve

MAX_DEPTH = 64
"""Deeper documents go through PyYAML, whose own recursion limit decides."""
MEMO_VALUE_CHARS = 64
"""Plain scalars up to this length have their tag remembered."""
MEMO_ENTRIES = 65536
"""The memo is emptied when it holds this many tags (memory stays bounded)."""


class Fallback(Exception):
    """The document needs PyYAML's general constructor."""


class FastResolve:
    """A mixin for a PyYAML loader class that registers no path resolver
    (``add_path_resolver``; PyYAML's own loaders register none): the tag of a
    plain scalar remembered by value, and the path-resolver hooks, no-ops
    without path resolvers upstream too, as C built-ins that ignore their
    arguments (the C composer calls them for every node).

    Exact as long as the class's implicit resolvers do not change after the
    first document (they are class attributes, set when the class is defined)."""

    _tag_memo: ClassVar[dict[str, str]] = {}

    def resolve(self, kind: Any, value: Any, implicit: tuple[bool, bool]) -> Any:
        if kind is ScalarNode:
            if not implicit[0]:
                return STR
            memo = self._tag_memo
            tag = memo.get(value)
            if tag is None:
                tag = _resolve(self, kind, value, implicit)
                if len(value) <= MEMO_VALUE_CHARS:
                    if len(memo) >= MEMO_ENTRIES:
                        memo.clear()
                    memo[value] = tag
            return tag
        return SEQ if kind is SequenceNode else MAP

    # called as descend_resolver(node, index) and ascend_resolver(): a built-in
    # function is not bound to the loader, and these two ignore their arguments
    descend_resolver: ClassVar[Any] = slice
    ascend_resolver: ClassVar[Any] = tuple


def build(loader: Any, node: yaml.Node, aliases: bool) -> Any:
    """The value of document ``node``, as ``loader.construct_document(node)``
    gives it, or :class:`Fallback`. ``aliases``: the text may hold anchors
    (then nodes met twice give the same object)."""
    constructors = loader.yaml_constructors
    memo: dict[int, Any] | None = {} if aliases else None
    scalar, seq, mapping = ScalarNode, SequenceNode, MappingNode

    def value(n: Any, depth: int) -> Any:
        if memo is not None:
            known = memo.get(id(n), memo)
            if known is not memo:
                return known
        cls = type(n)
        tag = n.tag
        if cls is scalar:
            if tag == STR:
                out: Any = n.value
            elif tag == NULL:
                out = None
            elif tag in (BOOL, INT, FLOAT):
                try:
                    out = constructors[tag](loader, n)
                except Exception:
                    raise Fallback from None
            else:
                raise Fallback
        elif depth >= MAX_DEPTH:
            raise Fallback
        elif cls is mapping and tag == MAP:
            out = {}
            if memo is not None:
                memo[id(n)] = out
            for k, v in n.value:
                # a plain string (most keys and values) is its node's value: no call
                if type(k) is scalar and k.tag == STR:
                    key = k.value
                elif k.tag in _SPECIAL_KEYS:
                    raise Fallback
                else:
                    key = value(k, depth + 1)
                    try:
                        hash(key)
                    except TypeError:  # an unhashable key: PyYAML's error
                        raise Fallback from None
                if key in out:  # a duplicate: the loader's error
                    raise Fallback
                if type(v) is scalar and v.tag == STR:
                    out[key] = v.value
                else:
                    out[key] = value(v, depth + 1)
            return out
        elif cls is seq and tag == SEQ:
            out = []
            if memo is not None:
                memo[id(n)] = out
            for item in n.value:
                if type(item) is scalar and item.tag == STR:
                    out.append(item.value)
                else:
                    out.append(value(item, depth + 1))
            return out
        else:
            raise Fallback
        if memo is not None:
            memo[id(n)] = out
        return out

    return value(node, 0)
