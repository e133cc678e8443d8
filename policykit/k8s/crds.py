"""Custom resources: the kinds that CustomResourceDefinitions add to a cluster.

``crds:`` in ``policykit.yaml`` (and ``--crd PATH`` on ``check``, ``build`` and
``verify``) names files or folders of CustomResourceDefinition YAML
(``apiextensions.k8s.io/v1``). From each one policykit reads the group, the
versions (served, storage), the plural, the scope and the structural schema
(``openAPIV3Schema``) of every version:

* the admission targets match a custom kind by resource, as they match a
  built-in one (:func:`policykit.k8s.kinds.lookup` consults the
  registry in force first): Gatekeeper ``match.kinds`` by group and kind,
  ValidatingPolicy and ValidatingAdmissionPolicy ``resourceRules`` by group,
  served versions and plural;
* ``check`` and ``verify`` validate each object of a custom kind against the
  schema of its version, as the API server does before admission runs
  (:meth:`CrdRegistry.validate`): an object it would reject is an input error
  (PK013, one line per violation, naming the field; exit 2), not a finding —
  no policy ever sees such an object;
* the schemas stay available (:meth:`CrdRegistry.schema`) for typed compilation.

A CRD file that is not YAML, holds anything but CRDs, has a version without a
structural schema, or defines a kind that a built-in kind of another group
already has, is a PK012 error (one line each, exit 2). ``kinds.json`` stays the
built-in kinds only (generated from the Kubernetes OpenAPI).

The registry in force is a context variable set by :func:`using` around a
build, a check or a verify run, so every layer below (capabilities, compilers,
the admission harness) sees the same kinds without another parameter.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policykit.errors import ErrorList, InputError, PolicykitError, SourceLoc
from policykit.k8s.kindtable import KindInfo, builtin
from policykit.model import Document

if TYPE_CHECKING:  # imported by the first schema check: a run with no CRDs never needs it
    import jsonschema

API_VERSION = "apiextensions.k8s.io/v1"
KIND = "CustomResourceDefinition"
INCLUDE = ("*.yaml", "*.yml", "*.json")


class CrdError(PolicykitError):
    """A CustomResourceDefinition file policykit cannot use."""

    code = "PK012"


class SchemaViolation(InputError):
    """An object that the API server would reject: not valid for its CRD's schema."""

    code = "PK013"


@dataclass(frozen=True, slots=True)
class CrdVersion:
    name: str
    served: bool
    storage: bool
    schema: Mapping[str, Any]  # the structural openAPIV3Schema


@dataclass(frozen=True, slots=True)
class Crd:
    kind: str
    group: str
    plural: str
    namespaced: bool
    versions: tuple[CrdVersion, ...]
    file: str = ""

    @property
    def name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def served(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.versions if v.served)

    @property
    def storage(self) -> str | None:
        return next((v.name for v in self.versions if v.storage), None)

    def info(self) -> KindInfo:
        return KindInfo(self.kind, self.group, self.served, self.plural, self.namespaced)

    def version(self, name: str) -> CrdVersion | None:
        return next((v for v in self.versions if v.name == name), None)


@dataclass(frozen=True, slots=True)
class CrdRegistry:
    """The custom kinds of a run, by kind name."""

    crds: Mapping[str, Crd] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.crds)

    def get(self, kind: str) -> Crd | None:
        return self.crds.get(kind)

    def lookup(self, kind: str) -> KindInfo | None:
        crd = self.crds.get(kind)
        return crd.info() if crd else None

    def schema(self, kind: str, version: str) -> Mapping[str, Any] | None:
        """The structural ``openAPIV3Schema`` of ``kind`` at ``version``."""
        crd = self.crds.get(kind)
        v = crd.version(version) if crd else None
        return v.schema if v else None

    def for_object(self, obj: Mapping[str, Any]) -> tuple[Crd, str] | None:
        """The CRD of an object and its version (matched by kind and group)."""
        crd = self.crds.get(str(obj.get("kind")))
        api = obj.get("apiVersion")
        if crd is None or not isinstance(api, str) or "/" not in api:
            return None
        group, _, version = api.rpartition("/")
        return (crd, version) if group == crd.group else None

    def validate(self, doc: Document) -> list[SchemaViolation]:
        """What the API server would refuse in ``doc``: one error per violation
        of its version's schema (none for an object no CRD defines)."""
        found = self.for_object(doc.obj)
        if found is None:
            return []
        crd, version = found
        loc = SourceLoc(doc.file, doc.line)
        what = f"{doc.obj.get('kind')} {doc.ref.name or '(no name)'}"
        v = crd.version(version)
        if v is None or not v.served:
            served = ", ".join(crd.served) or "none"
            return [
                SchemaViolation(
                    f"{what}: version {version} is not served by CRD {crd.name} (served: {served})",
                    loc=loc,
                    hint="use a served apiVersion, or update the CRD",
                )
            ]
        out = []
        for err in _validator(crd.name, v.name, v.schema).iter_errors(doc.obj):
            where = _field(err.absolute_path)
            out.append(
                SchemaViolation(
                    f"{what}: {where}: {_message(err)} (CRD {crd.name} {v.name}: "
                    "the API server would reject it)",
                    loc=loc,
                )
            )
        return sorted(out, key=lambda e: e.message)

    def validate_all(self, docs: Iterable[Document]) -> list[SchemaViolation]:
        return [e for d in docs for e in self.validate(d)]


EMPTY = CrdRegistry()
_ACTIVE: ContextVar[CrdRegistry] = ContextVar("policykit_crds", default=EMPTY)


def active() -> CrdRegistry:
    """The registry in force (empty outside :func:`using`)."""
    return _ACTIVE.get()


@contextlib.contextmanager
def using(registry: CrdRegistry | None) -> Iterator[CrdRegistry]:
    """Make ``registry`` the one in force for the block (``None``: leave as is)."""
    if registry is None:
        yield active()
        return
    token = _ACTIVE.set(registry)
    try:
        yield registry
    finally:
        _ACTIVE.reset(token)


# --- reading CRD files ----------------------------------------------------------------


def load(paths: Sequence[str | Path]) -> CrdRegistry:
    """The CRDs in ``paths`` (files, or folders read recursively for
    ``*.yaml``, ``*.yml`` and ``*.json``). Every problem is reported at once
    (:class:`ErrorList` of :class:`CrdError`, one line each)."""
    from policykit.loader import load_paths

    if not paths:
        return EMPTY
    loaded = load_paths([str(p) for p in paths], include=INCLUDE, exclude=())
    errors: list[PolicykitError] = [
        CrdError(e.message, loc=e.loc, hint=e.hint) for e in loaded.errors
    ]
    crds: dict[str, Crd] = {}
    for doc in loaded.documents:
        try:
            crd = parse(doc.obj, doc.file)
        except CrdError as e:
            e.loc = e.loc or SourceLoc(doc.file, doc.line)
            errors.append(e)
            continue
        loc = SourceLoc(doc.file, doc.line)
        known = builtin(crd.kind)
        if known is not None and known.group != crd.group:
            errors.append(
                CrdError(
                    f"CRD {crd.name} defines kind {crd.kind}, a built-in Kubernetes kind "
                    f"of group {known.group or 'core'}: rules select kinds by name, so the "
                    "two cannot be told apart",
                    loc=loc,
                    hint="rename the custom kind",
                )
            )
            continue
        other = crds.get(crd.kind)
        if other is not None and other.name != crd.name:
            errors.append(
                CrdError(
                    f"CRD {crd.name} defines kind {crd.kind}, which CRD {other.name} "
                    f"({other.file}) defines too: rules select kinds by name",
                    loc=loc,
                    hint="pass only one of them",
                )
            )
            continue
        crds[crd.kind] = crd
    if errors:
        raise ErrorList(errors)
    return CrdRegistry(dict(sorted(crds.items())))


def _need(cond: bool, what: str, name: str) -> None:
    if not cond:
        raise CrdError(f"CustomResourceDefinition {name}: {what}")


def parse(obj: Mapping[str, Any], file: str = "") -> Crd:
    """One CRD object (``apiextensions.k8s.io/v1``), checked: names, scope and a
    structural schema per version."""
    api, kind = obj.get("apiVersion"), obj.get("kind")
    if kind != KIND or api != API_VERSION:
        hint = (
            "convert it to apiextensions.k8s.io/v1 (v1beta1 was removed in Kubernetes 1.22)"
            if kind == KIND
            else "crds: and --crd take only CustomResourceDefinition files"
        )
        raise CrdError(
            f"not a CustomResourceDefinition of {API_VERSION} (apiVersion {api!r}, kind {kind!r})",
            hint=hint,
        )
    meta = obj.get("metadata")
    name = str(meta.get("name")) if isinstance(meta, dict) else "(no name)"
    spec = obj.get("spec")
    _need(isinstance(spec, dict), "spec must be an object", name)
    assert isinstance(spec, dict)
    group, names, scope = spec.get("group"), spec.get("names"), spec.get("scope")
    _need(isinstance(group, str) and bool(group), "spec.group must be a non-empty string", name)
    _need(isinstance(names, dict), "spec.names must be an object", name)
    assert isinstance(names, dict) and isinstance(group, str)
    ckind, plural = names.get("kind"), names.get("plural")
    _need(
        isinstance(ckind, str) and bool(re.fullmatch(r"[A-Z][A-Za-z0-9]*", ckind)),
        "spec.names.kind must be a CamelCase kind",
        name,
    )
    _need(
        isinstance(plural, str) and bool(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", plural)),
        "spec.names.plural must be a lowercase resource name",
        name,
    )
    assert isinstance(ckind, str) and isinstance(plural, str)
    _need(scope in ("Namespaced", "Cluster"), "spec.scope must be Namespaced or Cluster", name)
    raw_versions = spec.get("versions")
    _need(
        isinstance(raw_versions, list) and bool(raw_versions),
        "spec.versions must be a non-empty list",
        name,
    )
    assert isinstance(raw_versions, list)
    versions = []
    for i, v in enumerate(raw_versions):
        where = f"spec.versions[{i}]"
        _need(isinstance(v, dict) and isinstance(v.get("name"), str), f"{where}.name missing", name)
        vname = v["name"]
        schema = (
            (v.get("schema") or {}).get("openAPIV3Schema")
            if isinstance(v.get("schema"), dict)
            else None
        )
        if schema is None and isinstance(spec.get("validation"), dict):
            schema = spec["validation"].get("openAPIV3Schema")
        _need(
            isinstance(schema, dict),
            f"version {vname} has no schema.openAPIV3Schema (apiextensions.k8s.io/v1 "
            "requires a structural schema)",
            name,
        )
        assert isinstance(schema, dict)
        problem = structural_problem(schema)
        _need(problem is None, f"version {vname}: the schema is not structural: {problem}", name)
        problem = schema_problem(schema)
        _need(problem is None, f"version {vname}: the schema is invalid: {problem}", name)
        versions.append(
            CrdVersion(vname, v.get("served") is True, v.get("storage") is True, schema)
        )
    _need(
        sum(v.storage for v in versions) == 1,
        "exactly one version must be the storage version",
        name,
    )
    return Crd(ckind, group, plural, scope == "Namespaced", tuple(versions), file)


def structural_problem(schema: Any, path: str = "openAPIV3Schema") -> str | None:
    """Why ``schema`` is not structural (every node names a type, except
    int-or-string and preserve-unknown-fields nodes), or None."""
    if not isinstance(schema, dict):
        return f"{path} is not an object"
    exempt = schema.get("x-kubernetes-int-or-string") is True or (
        schema.get("x-kubernetes-preserve-unknown-fields") is True
    )
    t = schema.get("type")
    if not exempt and not (isinstance(t, str) and t):
        return f"{path} has no type"
    if path == "openAPIV3Schema" and t not in ("object", None):
        return f"{path} must be of type object"
    props = schema.get("properties")
    if isinstance(props, dict):
        for k, sub in props.items():
            why = structural_problem(sub, f"{path}.properties.{k}")
            if why:
                return why
    for key in ("items", "additionalProperties"):
        sub = schema.get(key)
        if isinstance(sub, dict):
            why = structural_problem(sub, f"{path}.{key}")
            if why:
                return why
    return None


def schema_problem(schema: Mapping[str, Any]) -> str | None:
    """Why ``schema`` cannot validate anything (``minimum: "0"``, ``type: s``,
    ``required: 5``, ``pattern: 5`` ...: its JSON Schema fails the 2020-12
    meta-schema), or None. Such a schema made validating an object an
    internal error."""
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(to_json_schema(schema, root=True))
    except jsonschema.SchemaError as exc:
        at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in exc.path)
        return f"openAPIV3Schema{at}: {exc.message}"
    except (TypeError, ValueError, AttributeError) as exc:  # a keyword of the wrong shape
        return f"openAPIV3Schema: {type(exc).__name__}: {exc}"
    return None


# --- validation: the OpenAPI v3 subset of CRDs as JSON Schema 2020-12 -------------------

_DROP = {
    "description",
    "title",
    "example",
    "externalDocs",
    "default",
    "format",
    "nullable",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
}


def to_json_schema(s: Mapping[str, Any], *, root: bool = False) -> dict[str, Any]:
    """A structural schema as JSON Schema, read as the API server reads it:
    ``nullable`` admits null, int-or-string admits both, ``exclusiveMinimum:
    true`` (OpenAPI 3.0) bounds strictly, a required field with a ``default``
    is filled in before validation, and an unknown field is refused (as by
    ``kubectl apply``'s strict field validation) unless the node preserves
    unknown fields. ``x-kubernetes-validations`` (CEL rules) are not checked.
    At the root, ``apiVersion``, ``kind`` and ``metadata`` are always allowed."""
    out: dict[str, Any] = {k: v for k, v in s.items() if k not in _DROP}
    if s.get("x-kubernetes-int-or-string") is True:
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    for bound in ("Minimum", "Maximum"):
        if out.get(f"exclusive{bound}") is True and f"{bound.lower()}" in out:
            out[f"exclusive{bound}"] = out.pop(bound.lower())
        elif isinstance(out.get(f"exclusive{bound}"), bool):
            out.pop(f"exclusive{bound}")
    props = s.get("properties")
    if isinstance(props, dict):
        out["properties"] = {k: to_json_schema(v) for k, v in props.items()}
        defaulted = {k for k, v in props.items() if isinstance(v, dict) and "default" in v}
        if isinstance(s.get("required"), list):
            out["required"] = [r for r in s["required"] if r not in defaulted]
    if isinstance(s.get("items"), dict):
        out["items"] = to_json_schema(s["items"])
    if isinstance(s.get("additionalProperties"), dict):
        out["additionalProperties"] = to_json_schema(s["additionalProperties"])
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(s.get(key), list):
            out[key] = [to_json_schema(x) for x in s[key] if isinstance(x, dict)]
    if isinstance(s.get("not"), dict):
        out["not"] = to_json_schema(s["not"])
    if root:
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
        if s.get("type") is None and not s.get("x-kubernetes-preserve-unknown-fields"):
            out["type"] = "object"
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in s
        and s.get("x-kubernetes-preserve-unknown-fields") is not True
    ):
        out["additionalProperties"] = False
    if s.get("nullable") is True:
        out = {"anyOf": [{"type": "null"}, out]}
    return out


# (crd, version, id of the schema) -> (the schema, kept alive so its id stays its own;
# its validator)
_VALIDATORS: dict[tuple[str, str, int], tuple[Any, jsonschema.Draft202012Validator]] = {}


def _validator(
    crd: str, version: str, schema: Mapping[str, Any]
) -> jsonschema.Draft202012Validator:
    key = (crd, version, id(schema))
    hit = _VALIDATORS.get(key)
    if hit is None:
        import jsonschema

        hit = (schema, jsonschema.Draft202012Validator(to_json_schema(schema, root=True)))
        _VALIDATORS[key] = hit
    return hit[1]


def _field(path: Iterable[Any]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(the object)"


def _message(err: jsonschema.ValidationError) -> str:
    if err.validator == "additionalProperties" and err.validator_value is False:
        schema: Any = err.schema
        instance: Any = err.instance
        extra = sorted(set(instance) - set(schema.get("properties", {})))
        return f"unknown field{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))}"
    text = " ".join(err.message.split())
    return text if len(text) <= 200 else text[:197] + "..."
