"""Field types of the built-in Kubernetes kinds, for typed CEL compilation.

The API server decodes an object into its Go type (built-in kinds) or prunes
and validates it against its structural schema (CRDs) *before* admission
runs, so a policy never sees a declared field of the wrong type. The CEL
compiler uses these types to drop the guards that cannot fail
(docs/targets.md, "Typed and untyped CEL").

``fieldtypes.json`` is derived from the Kubernetes OpenAPI (the JSON schemas
kubernetes-validate ships, version :data:`K8S_VERSION`, the oldest the VAP
target supports) by :func:`generate` — run ``python -m
policykit.targets.k8s.fieldtypes`` with the dev extra installed;
``tests/test_fieldtypes.py`` regenerates and compares it. The runtime never
imports kubernetes-validate.

A *spec* is a short string: ``s`` string, ``i`` integer, ``n`` number, ``b``
boolean, ``q`` a string or a number (int-or-string, quantities), ``*``
anything (free-form, several types), ``o`` an
object of unknown fields, ``[]X`` a list of X, ``{}X`` a map to X, ``#Name``
a struct in ``defs`` (a dict field → spec, or an alias spec).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

K8S_VERSION = "1.30.0"
"""The schemas' Kubernetes version: a field added later is typed as unknown
(the untyped, guarded form), which is correct on every newer version."""

_TABLE = "fieldtypes.json"


# --- generation (dev only) --------------------------------------------------------------


def _spec(s: Mapping[str, Any], short: Mapping[str, str]) -> str:
    ref = s.get("$ref")
    if isinstance(ref, str):
        return "#" + short[ref.rsplit("/", 1)[1]]
    if s.get("x-kubernetes-int-or-string") or _string_or_number(s.get("oneOf")):
        return "q"
    if "oneOf" in s or "anyOf" in s:
        return "*"
    t = s.get("type")
    types = [t] if isinstance(t, str) else [x for x in (t or []) if x != "null"]
    if len(types) != 1:
        return "*"
    t = types[0]
    if t == "string":
        return "s"
    if t == "integer":
        return "i"
    if t == "number":
        return "n"
    if t == "boolean":
        return "b"
    if t == "array":
        items = s.get("items")
        return "[]" + (_spec(items, short) if isinstance(items, dict) else "*")
    if t == "object":
        if isinstance(s.get("additionalProperties"), dict):
            return "{}" + _spec(s["additionalProperties"], short)
        return "o"
    return "*"


def _string_or_number(alts: Any) -> bool:
    """Whether ``oneOf`` alternatives are a string and numbers (and null,
    which kubernetes-json-schema adds to every type and a decoded object never
    holds): Quantity, IntOrString."""
    if not isinstance(alts, list) or not alts:
        return False
    types: set[str] = set()
    for a in alts:
        t = a.get("type") if isinstance(a, dict) else None
        types.update([t] if isinstance(t, str) else t if isinstance(t, list) else ["?"])
    return "string" in types and types <= {"string", "number", "integer", "null"}


def generate(schema_dir: str | Path, kinds: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The table for ``kinds`` (``kinds.json``) from kubernetes-validate's
    ``_definitions.json`` in ``schema_dir``: each kind's struct for every
    version it is served in, and every struct they reach."""
    defs: dict[str, Any] = json.loads((Path(schema_dir) / "_definitions.json").read_text())["$defs"]
    short = {name: name.removeprefix("io.k8s.").replace("apimachinery.pkg.", "") for name in defs}
    by_gvk: dict[tuple[str, str], list[str]] = {}
    for name, d in sorted(defs.items()):
        for gvk in d.get("x-kubernetes-group-version-kind") or []:
            by_gvk.setdefault((gvk["group"], gvk["kind"]), []).append(name)
    out_kinds: dict[str, list[str]] = {}
    todo: list[str] = []
    for kind, info in sorted(kinds.items()):
        names = [n for n in by_gvk.get((info["group"], kind), []) if not n.endswith("List")]
        if names:
            out_kinds[kind] = sorted(short[n] for n in names)
            todo += names
    out_defs: dict[str, Any] = {}
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        d = defs[name]
        props = d.get("properties")
        if isinstance(props, dict) and props:
            fields = {k: _spec(v, short) for k, v in sorted(props.items())}
            out_defs[short[name]] = fields
        else:
            out_defs[short[name]] = _spec(d, short)
        text = json.dumps(d)
        todo += [r.rsplit("/", 1)[1] for r in _refs(text)]
    return {
        "kubernetes": K8S_VERSION,
        "kinds": out_kinds,
        "defs": dict(sorted(out_defs.items())),
    }


def _refs(text: str) -> Iterable[str]:
    import re

    return re.findall(r'"\$ref": "([^"]+)"', text)


def render(table: Mapping[str, Any]) -> str:
    """The packaged file's text (one def per line: small diffs, stable)."""
    lines = ["{", f' "kubernetes": {json.dumps(table["kubernetes"])},', ' "kinds": {']
    kinds = list(table["kinds"].items())
    for i, (k, v) in enumerate(kinds):
        lines.append(f"  {json.dumps(k)}: {json.dumps(v)}" + ("," if i < len(kinds) - 1 else ""))
    lines += [" },", ' "defs": {']
    defs = list(table["defs"].items())
    for i, (k, v) in enumerate(defs):
        lines.append(f"  {json.dumps(k)}: {json.dumps(v)}" + ("," if i < len(defs) - 1 else ""))
    lines += [" }", "}", ""]
    return "\n".join(lines)


def schema_dir() -> Path:
    """kubernetes-validate's schemas for :data:`K8S_VERSION` (dev extra)."""
    import kubernetes_validate  # type: ignore[import-untyped]

    return (
        Path(kubernetes_validate.__file__).parent
        / "kubernetes-json-schema"
        / f"v{K8S_VERSION}-local"
    )


def regenerate() -> str:
    kinds = json.loads(Path(__file__).with_name("kinds.json").read_text())
    return render(generate(schema_dir(), kinds))


# --- use --------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    from policykit.resources import read_text

    loaded: dict[str, Any] = json.loads(read_text("targets", "k8s", _TABLE))
    return loaded


@dataclass(frozen=True, slots=True)
class FieldType:
    """What is known of a value's type: the specs it may have (one per kind or
    version the rule may see; a field one kind lacks is one the API server
    drops from it). ``jtype`` is the JSON type all of them share, or ``any``."""

    specs: frozenset[str]
    defs: Mapping[str, Any]

    def _resolve(self, spec: str) -> Any:
        seen = 0
        out: Any = spec
        while isinstance(out, str) and out.startswith("#") and seen < 20:
            out = self.defs.get(out[1:], "*")
            seen += 1
        return out

    def _resolved(self) -> list[Any]:
        return [self._resolve(s) for s in sorted(self.specs)]

    @property
    def string_or_number(self) -> bool:
        """Every spec is ``q``: the value is a string or a number."""
        return all(r == "q" for r in self._resolved())

    @property
    def jtype(self) -> str:
        kinds = set()
        for r in self._resolved():
            if isinstance(r, dict) or r == "o" or r.startswith("{}"):
                kinds.add("object")
            elif r.startswith("[]"):
                kinds.add("array")
            else:
                kinds.add(
                    {"s": "string", "i": "number", "n": "number", "b": "boolean"}.get(r, "any")
                )
        return kinds.pop() if len(kinds) == 1 else "any"

    def field(self, key: str) -> FieldType | None:
        """The type of ``x[key]``; None when no spec declares the field."""
        out = set()
        for r in self._resolved():
            if isinstance(r, dict):
                if key in r:
                    out.add(r[key])
            elif r.startswith("{}"):
                out.add(r[2:])
        return FieldType(frozenset(out), self.defs) if out else None

    def items(self) -> FieldType | None:
        out = {r[2:] for r in self._resolved() if isinstance(r, str) and r.startswith("[]")}
        return FieldType(frozenset(out), self.defs) if out else None


def _crd_spec(schema: Mapping[str, Any], defs: dict[str, Any], name: str) -> str:
    """A CRD's structural schema into specs (registered in ``defs``).

    An object with ``properties`` and ``x-kubernetes-preserve-unknown-fields``
    keeps its declared fields typed; any other key of it is unknown (the
    untyped form), as for every key no schema declares."""
    preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
    if schema.get("nullable") or (preserve and not schema.get("properties")):
        return "*"
    if schema.get("x-kubernetes-int-or-string"):
        return "q"
    if schema.get("x-kubernetes-embedded-resource"):
        return "*"
    t = schema.get("type")
    if t == "object":
        props = schema.get("properties")
        if isinstance(props, dict) and props:
            defs[name] = {
                k: _crd_spec(v, defs, f"{name}.{k}")
                for k, v in props.items()
                if isinstance(v, dict)
            }
            return "#" + name
        if isinstance(schema.get("additionalProperties"), dict):
            return "{}" + _crd_spec(schema["additionalProperties"], defs, f"{name}.*")
        return "o"
    if t == "array":
        items = schema.get("items")
        return "[]" + (_crd_spec(items, defs, f"{name}[]") if isinstance(items, dict) else "*")
    return {"string": "s", "integer": "i", "number": "n", "boolean": "b"}.get(str(t), "*")


def of_kinds(kinds: Iterable[str]) -> FieldType | None:
    """The type of ``object`` for a rule selecting ``kinds``: None when one of
    them has no known schema (the untyped form applies)."""
    from policykit.k8s import crds

    kinds = list(kinds)
    if not kinds:
        return None
    t = table()
    defs: dict[str, Any] = dict(t["defs"])
    specs: set[str] = set()
    registry = crds.active()
    for kind in kinds:
        crd = registry.get(kind)
        if crd is not None:
            for v in crd.versions:
                name = f"crd:{crd.group}/{v.name}/{kind}"
                specs.add(_crd_spec(v.schema, defs, name))
            continue
        names = t["kinds"].get(kind)
        if not names:
            return None
        specs.update("#" + n for n in names)
    if "*" in specs:
        return None
    # every object has these, whatever its schema says
    meta = "#apis.meta.v1.ObjectMeta" if "apis.meta.v1.ObjectMeta" in defs else "o"
    root_extra = {"apiVersion": "s", "kind": "s", "metadata": meta}
    fixed = set()
    for s in specs:
        r = defs.get(s[1:]) if s.startswith("#") else None
        if isinstance(r, dict):
            name = s[1:] + "+root"
            defs[name] = {**r, **root_extra}
            fixed.add("#" + name)
        else:
            fixed.add(s)
    return FieldType(frozenset(fixed), defs)


def kubernetes_object() -> FieldType:
    """What every Kubernetes object has at admission, whatever its kind:
    string ``apiVersion`` and ``kind``, and ``metadata`` (ObjectMeta)."""
    defs: dict[str, Any] = dict(table()["defs"])
    defs["object+root"] = {"apiVersion": "s", "kind": "s", "metadata": "#apis.meta.v1.ObjectMeta"}
    return FieldType(frozenset({"#object+root"}), defs)


if __name__ == "__main__":
    Path(__file__).with_name(_TABLE).write_text(regenerate())
