"""Structural defaulting: the ``default`` values of an OpenAPI v3 schema filled
into an object, as the API server fills a custom resource's
(k8s.io/apiextensions-apiserver ``pkg/apiserver/schema/defaulting/algorithm.go``
``Default``). Gatekeeper applies it to each constraint with the schema its
template declares for ``spec.parameters`` before any template sees it
(open-policy-agent/frameworks ``constraint/pkg/client/template_client.go``
``ApplyDefaultParams``, ``crds/schema.go`` ``CreateSchema``).

The algorithm, for a map: each property the schema gives a default and the map
lacks (or holds ``null`` where the property is not ``nullable``) gets a copy of
the default; then each value is defaulted with its property's schema, else
``additionalProperties``'. For a list: each item with ``items``. A scalar is
left alone. It descends only into what the object has: a default inside
``spec.parameters`` fills nothing when the constraint has no parameters.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def has_defaults(schema: Any) -> bool:
    """Whether ``schema`` declares a ``default`` anywhere :func:`default` looks."""
    if not isinstance(schema, Mapping):
        return False
    props = schema.get("properties")
    if isinstance(props, Mapping) and any(
        (isinstance(p, Mapping) and p.get("default") is not None) or has_defaults(p)
        for p in props.values()
    ):
        return True
    return has_defaults(schema.get("additionalProperties")) or has_defaults(schema.get("items"))


def default(value: Any, schema: Any) -> None:
    """Fill ``schema``'s defaults into ``value`` in place (maps and lists of it)."""
    if not isinstance(schema, Mapping):
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        props = props if isinstance(props, Mapping) else {}
        for key, prop in props.items():
            if not isinstance(prop, Mapping) or prop.get("default") is None:
                continue
            if key not in value or (value[key] is None and not prop.get("nullable")):
                value[key] = copy.deepcopy(prop["default"])
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                default(item, props[key])
            elif isinstance(extra, Mapping):
                default(item, extra)
    elif isinstance(value, list):
        for item in value:
            default(item, schema.get("items"))
