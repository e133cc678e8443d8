"""Which objects a policy applies to, in the three dialects policykit runs:

* ``matchConstraints`` / binding ``matchResources`` of ValidatingAdmissionPolicy
  and Kyverno ValidatingPolicy (k8s.io/apiserver ``pkg/admission/plugin/policy/
  matching``, which Kyverno reuses in ``pkg/cel/matching/matcher.go``):
  resource rules, exclusions, object and namespace selectors;
* Kyverno ClusterPolicy ``match``/``exclude`` blocks (``pkg/engine/utils/
  match.go``): ``any``/``all`` filters of resource descriptions and users;
* Gatekeeper's ``spec.match`` (``pkg/mutation/match``);
* ``matchConditions`` (CEL), as Kyverno's ``Policy.match`` and the API
  server's matcher read them: :func:`conditions_hold`.

``label_selector_matches`` is ``metav1.LabelSelector`` for all three.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from policykit.engines.cel import CelEvalError, View, program
from policykit.k8s.kinds import NAMESPACE_NAME_LABEL, KindInfo
from policykit.k8s.request import Context, metadata, namespace_of


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, Any]) -> bool:
    """``metav1.LabelSelector`` semantics; an empty or absent selector matches all."""
    if not selector:
        return True
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _labels(obj: Mapping[str, Any]) -> dict[str, Any]:
    labels = metadata(obj).get("labels")
    return labels if isinstance(labels, dict) else {}


# --- matchConstraints (VAP, ValidatingPolicy) -----------------------------------------


class _ResourceRule:
    """One ``resourceRules`` entry, read once: each list as given (None: it holds ``*``)."""

    __slots__ = ("groups", "names", "operations", "resources", "scope", "versions")

    def __init__(self, rule: Mapping[str, Any]) -> None:
        def items(field: str) -> Any:
            got = rule.get(field) or ()
            return None if "*" in got else got

        self.groups, self.versions = items("apiGroups"), items("apiVersions")
        self.resources, self.operations = items("resources"), items("operations")
        self.scope = rule.get("scope", "*")
        self.names = rule.get("resourceNames") or ()

    def matches(self, obj: Mapping[str, Any], info: KindInfo, operation: str) -> bool:
        if self.scope == "Namespaced" and not info.namespaced:
            return False
        if self.scope == "Cluster" and info.namespaced:
            return False
        return (
            (self.groups is None or info.group in self.groups)
            and (
                self.versions is None
                or str(obj.get("apiVersion", "")).rpartition("/")[2] in self.versions
            )
            and (self.resources is None or info.resource in self.resources)
            and (self.operations is None or operation in self.operations)
            and (not self.names or metadata(obj).get("name") in self.names)
        )


class Constraints:
    """``matchConstraints`` / ``matchResources`` of VAP and ValidatingPolicy
    (k8s.io/apiserver ``pkg/admission/plugin/policy/matching/matching.go``),
    read once and asked of many objects.

    Whether the resource rules match depends only on the object's kind, API
    version and the operation when no rule names resources
    (``resourceNames``): the answer is then remembered per those (``verify``
    asks each policy of thousands of objects of a few kinds, issue 21)."""

    __slots__ = ("_excluded", "_kinds", "_namespace_selector", "_object_selector", "_rules")

    def __init__(self, mc: Mapping[str, Any]) -> None:
        self._rules = [_ResourceRule(r) for r in mc.get("resourceRules") or []]
        self._excluded = [_ResourceRule(r) for r in mc.get("excludeResourceRules") or []]
        self._object_selector = mc.get("objectSelector")
        self._namespace_selector = mc.get("namespaceSelector")
        # (group, resource, namespaced, version, operation) -> whether the
        # resource rules match; None: a rule names resources (asked per object)
        named = any(r.names for r in (*self._rules, *self._excluded))
        self._kinds: dict[tuple[str, str, bool, str, str], bool] | None = None if named else {}

    def _resources_match(self, obj: Mapping[str, Any], info: KindInfo, operation: str) -> bool:
        """A resource rule matches and no excluded one does."""
        kinds = self._kinds
        if kinds is None:
            return any(r.matches(obj, info, operation) for r in self._rules) and not any(
                r.matches(obj, info, operation) for r in self._excluded
            )
        version = str(obj.get("apiVersion", "")).rpartition("/")[2]
        key = (info.group, info.resource, info.namespaced, version, operation)
        got = kinds.get(key)
        if got is None:
            got = kinds[key] = any(
                r.matches(obj, info, operation) for r in self._rules
            ) and not any(r.matches(obj, info, operation) for r in self._excluded)
        return got

    def matches(
        self,
        obj: Mapping[str, Any],
        info: KindInfo | None,
        operation: str,
        namespace_labels: Mapping[str, Any] | None = None,
    ) -> bool:
        """Whether ``obj`` (of kind ``info``; None: unknown, matching no
        resource rule) is matched. Without ``namespace_labels`` the namespace
        carries the label the API server gives every namespace,
        ``kubernetes.io/metadata.name``."""
        if info is None or not self._resources_match(obj, info, operation):
            return False
        if self._object_selector and not label_selector_matches(
            self._object_selector, _labels(obj)
        ):
            return False
        if not self._namespace_selector or not info.namespaced:
            return True
        if namespace_labels is None:
            ns = metadata(obj).get("namespace")
            namespace_labels = {NAMESPACE_NAME_LABEL: ns} if isinstance(ns, str) else {}
        return label_selector_matches(self._namespace_selector, namespace_labels)


# --- Kyverno match/exclude blocks -------------------------------------------------------


def _wild(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)


def _has_wild(text: str) -> bool:
    return "*" in text or "?" in text


def kyverno_selector_matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """Kyverno's ``CheckSelector`` (``pkg/utils/match/labels.go``): a
    ``matchLabels`` entry whose key or value holds ``*`` or ``?`` first becomes
    the first label it matches both ways, else the text with each wildcard
    written ``0`` (``pkg/engine/wildcards/wildcards.go`` ``ReplaceInSelector``);
    then ``metav1.LabelSelector``."""
    given = selector.get("matchLabels")
    if isinstance(given, Mapping) and any(_has_wild(f"{k}{v}") for k, v in given.items()):
        resolved: dict[str, Any] = {}
        for k, v in given.items():
            key, value = str(k), str(v)
            if not (_has_wild(key) or _has_wild(value)):
                resolved[k] = v
                continue
            for k1, v1 in labels.items():
                if _wild(key, str(k1)) and _wild(value, str(v1)):
                    key, value = str(k1), str(v1)
                    break
            else:
                key = key.replace("*", "0").replace("?", "0")
                value = value.replace("*", "0").replace("?", "0")
            resolved[key] = value
        selector = {**selector, "matchLabels": resolved}
    return label_selector_matches(selector, labels)


def _kind_matches(spec: str, obj: Mapping[str, Any]) -> bool:
    """``Kind``, ``version/Kind``, ``group/version/Kind`` (wildcards allowed);
    a subresource (``Pod/status``) never matches the resource itself."""
    parts = spec.split("/")
    api = str(obj.get("apiVersion", ""))
    group, _, version = api.rpartition("/")
    kind = str(obj.get("kind", ""))
    if len(parts) >= 2 and parts[-1][:1].islower() and parts[-2][:1].isupper():
        return False  # Kind/subresource
    if len(parts) == 1:
        return _wild(parts[0], kind)
    if len(parts) == 2:
        return _wild(parts[0], version) and _wild(parts[1], kind)
    return _wild(parts[0], group) and _wild(parts[1], version) and _wild(parts[2], kind)


Mode = Literal["match", "exclude", "exception"]
"""Which block a filter is in: a rule's ``match`` or ``exclude``, or a
PolicyException's ``match`` (``pkg/engine/utils/exceptions.go``)."""


def _description_matches(
    rd: Mapping[str, Any], obj: Mapping[str, Any], ctx: Context, mode: Mode
) -> bool:
    meta = metadata(obj)
    kinds = rd.get("kinds") or []
    if kinds and not any(_kind_matches(str(k), obj) for k in kinds):
        return False
    names = list(rd.get("names") or []) + ([rd["name"]] if rd.get("name") else [])
    if names and not any(_wild(str(n), str(meta.get("name", ""))) for n in names):
        return False
    if rd.get("namespaces") and not any(_wild(str(n), namespace_of(obj)) for n in rd["namespaces"]):
        return False
    if rd.get("operations") and ctx.operation not in rd["operations"]:
        return False
    annotations = meta.get("annotations") or {}
    for k, v in (rd.get("annotations") or {}).items():
        if k not in annotations or not _wild(str(v), str(annotations[k])):
            return False
    if rd.get("selector") is not None and not kyverno_selector_matches(
        rd["selector"], meta.get("labels") or {}
    ):
        return False
    if rd.get("namespaceSelector") is not None:
        # a rule's filter never matches a Namespace ("namespace selector is not
        # applicable for namespace resource"), an exception's ignores the
        # selector there; a cluster-scoped object is held to the labels of
        # namespace "": none (pkg/engine/utils/match.go
        # doesResourceMatchConditionBlock, exceptions.go checkResourceDescription)
        if obj.get("kind") == "Namespace":
            if mode != "exception":
                return False
        elif obj.get("kind"):
            labels = ctx.namespace_labels.get(str(meta.get("namespace") or ""), {})
            if not kyverno_selector_matches(rd["namespaceSelector"], labels):
                return False
    return True


def _user_matches(f: Mapping[str, Any], ctx: Context) -> bool:
    """The filter's roles, clusterRoles and subjects against the context's user:
    with no user given (no userinfo file) the CLI's request carries an empty
    one, which no role, cluster role, group or named user matches."""
    given = ctx.user_given
    roles, cluster_roles = (ctx.roles, ctx.cluster_roles) if given else ((), ())
    username, groups = (ctx.username, ctx.groups) if given else ("", ())
    if f.get("roles") and not set(f["roles"]) & set(roles):
        return False
    if f.get("clusterRoles") and not set(f["clusterRoles"]) & set(cluster_roles):
        return False
    subjects = f.get("subjects") or []
    if not subjects:
        return True
    for s in subjects:
        kind, name = s.get("kind"), str(s.get("name", ""))
        if kind == "User" and _wild(name, username):
            return True
        if kind == "Group" and any(_wild(name, g) for g in groups):
            return True
        if kind == "ServiceAccount" and _wild(
            f"system:serviceaccount:{s.get('namespace', '')}:{name}", username
        ):
            return True
    return False


_DESCRIPTION_KEYS = (
    "kinds", "name", "names", "namespaces", "annotations", "selector", "namespaceSelector",
    "operations",
)  # fmt: skip


def _empty_filter(f: Mapping[str, Any], with_user: bool) -> bool:
    """Kyverno's ``IsEmpty`` of a filter's resource description (and, with
    ``with_user``, of its user part): nothing that could select an object."""
    rd = f.get("resources")
    described = isinstance(rd, Mapping) and any(
        # a selector is there when given, even empty (a nil pointer in Go is not)
        rd.get(k) is not None if k.endswith("elector") else bool(rd.get(k))
        for k in _DESCRIPTION_KEYS
    )
    if described:
        return False
    return not (with_user and any(f.get(k) for k in ("roles", "clusterRoles", "subjects")))


def _filter_matches(f: Mapping[str, Any], obj: Mapping[str, Any], ctx: Context, mode: Mode) -> bool:
    # an empty filter selects nothing: a match filter ("match cannot be empty",
    # its user part dropped without user info), an exclude filter, an
    # exception's (checkResourceFilter: IsEmpty)
    if _empty_filter(f, with_user=mode != "match" or ctx.user_given):
        return False
    rd = f.get("resources")
    if rd is not None and not _description_matches(rd, obj, ctx, mode):
        return False
    # a rule's match filter drops its user part when the request has no user
    # info (matchesResourceDescriptionMatchHelper); exclude and exception
    # filters keep it
    return (mode == "match" and not ctx.user_given) or _user_matches(f, ctx)


def matches(
    block: Mapping[str, Any] | None,
    obj: Mapping[str, Any],
    ctx: Context,
    mode: Mode = "match",
) -> bool:
    """A Kyverno ``match``, ``exclude`` or PolicyException ``match`` block
    (``mode``): ``any`` (one filter), ``all`` (every filter) or a single filter
    at the top."""
    if not block:
        return False
    if block.get("any"):
        return any(_filter_matches(f, obj, ctx, mode) for f in block["any"])
    if block.get("all"):
        return all(_filter_matches(f, obj, ctx, mode) for f in block["all"])
    # a rule's block may be one filter (its legacy form); an exception's may not
    return mode != "exception" and _filter_matches(block, obj, ctx, mode)


# --- Gatekeeper spec.match ----------------------------------------------------------


def _wildcard(pattern: str, value: str) -> bool:
    """Gatekeeper's ``util.Wildcard``: exact, ``prefix*`` or ``*suffix``."""
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return pattern == value


def _glob(patterns: list[str], value: str) -> bool:
    return any(_wildcard(p, value) for p in patterns)


def gatekeeper_match(
    m: Mapping[str, Any] | None,
    obj: Mapping[str, Any],
    namespace_object: Mapping[str, Any] | None = None,
) -> bool:
    """Gatekeeper's ``spec.match`` (``pkg/mutation/match``): every given matcher
    must hold. The namespace is the Namespace's own name, else the namespace
    object's, else the one the object declares (as gator does); an object
    with none is cluster-scoped and passes the namespace matchers."""
    if not m:
        return True
    api = str(obj.get("apiVersion", ""))
    group = api.rpartition("/")[0]
    kind = obj.get("kind")
    meta = metadata(obj)
    is_namespace = kind == "Namespace" and group == ""
    ns_meta = (namespace_object or {}).get("metadata") or {}
    if is_namespace:
        ns: str | None = str(meta.get("name", ""))
    elif namespace_object is not None:
        ns = str(ns_meta.get("name", ""))
    else:
        ns = str(meta["namespace"]) if meta.get("namespace") else None
    if m.get("kinds"):
        ok = False
        for k in m["kinds"]:
            groups, kinds = k.get("apiGroups") or ["*"], k.get("kinds") or ["*"]
            if ("*" in groups or group in groups) and ("*" in kinds or kind in kinds):
                ok = True
        if not ok:
            return False
    has_namespace = bool(meta.get("namespace")) or namespace_object is not None
    scope = m.get("scope", "*")
    if scope == "Cluster" and not (is_namespace or not has_namespace):
        return False
    if scope == "Namespaced" and not (not is_namespace and has_namespace):
        return False
    if m.get("namespaces") and ns is not None and not _glob(m["namespaces"], ns):
        return False
    if m.get("excludedNamespaces") and ns is not None and _glob(m["excludedNamespaces"], ns):
        return False
    labels = _labels(obj)
    if m.get("labelSelector") is not None and not label_selector_matches(
        m["labelSelector"], labels
    ):
        return False
    if m.get("namespaceSelector") is not None and (is_namespace or ns is not None):
        sel_labels = labels if is_namespace else (ns_meta.get("labels") or {})
        if not label_selector_matches(m["namespaceSelector"], sel_labels):
            return False
    return not (m.get("name") and not _wildcard(str(m["name"]), str(meta.get("name", ""))))


# --- matchConditions -------------------------------------------------------------------


def conditions_hold(
    conditions: Sequence[Mapping[str, Any]],
    data: Mapping[str, Any] | View,
    failure_policy: str = "Fail",
) -> bool:
    """Match conditions as Kyverno's ``Policy.match`` (kyverno/kyverno
    ``pkg/cel/policies/vpol/compiler/policy.go``) and the API server's matcher
    (k8s.io/apiserver ``pkg/admission/plugin/webhook/matchconditions/
    matcher.go``) read them: false as soon as one is false; errors (and
    non-bool results) are collected, then fail — the first is raised — unless
    the failure policy is ``Ignore`` (no match)."""
    errors: list[CelEvalError] = []
    for cond in conditions:
        try:
            got = program(str(cond["expression"])).eval(data)
        except CelEvalError as exc:
            errors.append(exc)
            continue
        if got is not True:
            if got is False:
                return False
            errors.append(CelEvalError(f"match condition {cond.get('name', '')!r} is not a bool"))
    if not errors:
        return True
    if failure_policy == "Ignore":
        return False
    raise errors[0]
