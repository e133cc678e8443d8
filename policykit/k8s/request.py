"""What an admission request carries besides the object: operation, user,
namespaces, parameter resources, PolicyExceptions — the :class:`Context` of
one evaluation — and the ``request`` variable built from it; the
:class:`Review` of one object that many policies share, and the
:func:`session` in which they do (``verify``, issue 21)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from policykit.engines.cel import Lookups
from policykit.engines.cel_bindings import Bindings
from policykit.k8s.kinds import NAMESPACE_NAME_LABEL, KindInfo, for_object


@dataclass(slots=True)
class Context:
    """What the CLI gets besides the resource: operation, namespace labels
    (from the values file), the requesting user and parameter resources."""

    operation: str = "CREATE"
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    username: str = "policykit-local"
    groups: tuple[str, ...] = ("system:authenticated",)
    roles: tuple[str, ...] = ()
    cluster_roles: tuple[str, ...] = ()
    # a userinfo file was given: Kyverno match/exclude filters read the user
    # above; without one they see the CLI's empty request info
    user_given: bool = False
    params: Sequence[Mapping[str, Any]] = ()
    exceptions: Sequence[Mapping[str, Any]] = ()
    old_object: Mapping[str, Any] | None = None
    now: dt.datetime | None = None
    # Namespace objects from the values file's ``namespaces`` (they win over
    # ``namespaceSelector`` labels, cmd/cli/kubectl-kyverno/variables/variables.go)
    namespaces: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # what resource.Get/List and image.GetMetadata read (a kyverno-test's
    # ``context:`` file); None: those libraries are not run
    lookups: Lookups | None = None
    values: Mapping[str, Any] = field(default_factory=dict)  # the kyverno-test values file


def metadata(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    """``obj.metadata`` when it is a map, else ``{}``."""
    meta = (obj or {}).get("metadata")
    return meta if isinstance(meta, dict) else {}


def namespace_of(obj: Mapping[str, Any]) -> str:
    """The namespace an object is in (a Namespace: its own name)."""
    meta = metadata(obj)
    if obj.get("kind") == "Namespace":
        return str(meta.get("name", ""))
    return str(meta.get("namespace", "") or "")


T = TypeVar("T")
_LOOKUP: Any = object()  # request_for's ``info`` when the caller has not looked it up


def request_for(
    obj: Mapping[str, Any], operation: str = "CREATE", info: KindInfo | None = _LOOKUP
) -> dict[str, Any]:
    """An AdmissionRequest for ``obj`` (the ``request`` CEL variable); ``info``:
    its kind (:func:`policykit.k8s.kinds.for_object`), when already known."""
    api = str(obj.get("apiVersion", ""))
    group, _, version = api.rpartition("/")
    if info is _LOOKUP:
        info = for_object(dict(obj))
    meta = metadata(obj)
    return {
        "operation": operation,
        "kind": {"group": group, "version": version, "kind": obj.get("kind")},
        "resource": {
            "group": group,
            "version": version,
            "resource": info.resource if info else "",
        },
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", ""),
        "userInfo": {"username": "policykit-local", "groups": ["system:authenticated"]},
        "dryRun": False,
    }


def admission_data(
    obj: Mapping[str, Any], ctx: Context, request: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The CEL variables of an admission evaluation: ``object``, ``oldObject``
    (on DELETE the object is the old one), ``request`` with the context's
    user, and ``namespaceObject`` (a Namespace carrying the context's labels
    for that namespace, none for cluster-scoped objects and Namespaces).
    ``request``: :func:`request_for` of the object and operation, when made
    (itself, not a copy, when it has the context's user)."""
    user = {"username": ctx.username, "groups": list(ctx.groups)}
    base = request if request is not None else request_for(obj, ctx.operation)
    # the request itself when it names that user already (a review's request,
    # the same object for every policy evaluated on it)
    request = base if base.get("userInfo") == user else {**base, "userInfo": user}
    ns = namespace_of(obj)
    ns_obj = (
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns, "labels": ctx.namespace_labels.get(ns, {})},
        }
        if ns and obj.get("kind") != "Namespace"
        else None
    )
    return {
        "object": obj if ctx.operation != "DELETE" else None,
        "oldObject": ctx.old_object if ctx.operation != "DELETE" else obj,
        "request": request,
        "namespaceObject": ns_obj,
    }


REQUEST_VARIABLES = ("object", "oldObject", "request", "params", "namespaceObject")
"""The variables of an admission request (the policies' ``variables`` aside)."""


class Review:
    """One object under admission, seen by many policies (``verify`` runs every
    policy on each object): its kind, looked up once, its AdmissionRequest
    per operation, its Namespace, and the CEL
    :class:`~policykit.engines.cel_bindings.Bindings` the policies share,
    one per set of request variables.

    :meth:`bindings` is keyed by the identity of the values bound (and of
    the context the resource libraries read); the review keeps them, so an
    identity is never reused while it lives, and nothing it binds may change
    meanwhile. A ValidatingAdmissionPolicy and a ValidatingPolicy given the
    same request variables (the review's request and Namespace) share one."""

    __slots__ = ("_bindings", "_namespace_object", "_requests", "info", "memo", "namespace", "obj")

    def __init__(self, obj: Mapping[str, Any]) -> None:
        self.obj = obj
        self.info = for_object(obj if isinstance(obj, dict) else dict(obj))
        self.namespace = namespace_of(obj)
        # what evaluators work out once per object (keys name what it depends
        # on; a value keeps the objects whose identity is in its key)
        self.memo: dict[tuple[Any, ...], Any] = {}
        self._requests: dict[str, dict[str, Any]] = {}
        self._bindings: dict[tuple[int, ...], tuple[Bindings, tuple[Any, ...]]] = {}
        self._namespace_object: tuple[dict[str, Any] | None] | None = None  # None: not made

    def request(self, operation: str) -> dict[str, Any]:
        """:func:`request_for` the object and ``operation`` (not to be changed)."""
        got = self._requests.get(operation)
        if got is None:
            got = self._requests[operation] = request_for(self.obj, operation, self.info)
        return got

    def namespace_object(self) -> dict[str, Any] | None:
        """The object's Namespace as an admission evaluator sees it
        (``namespaceObject``: "the namespace object that the incoming object
        belongs to; null for cluster-scoped resources", kubernetes.io
        docs/reference/access-authn-authz/validating-admission-policy), when
        nothing more of it is known: its name and the label the API server
        gives every namespace (``kubernetes.io/metadata.name``, so a
        namespace selector sees what it sees without one); None for a
        Namespace and for an object in no namespace (as :func:`admission_data`
        has it). The same object each time (not to be changed)."""
        if self._namespace_object is None:
            ns = self.namespace
            made = (
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": ns, "labels": {NAMESPACE_NAME_LABEL: ns}},
                }
                if ns
                and self.obj.get("kind") != "Namespace"
                and (self.info is None or self.info.namespaced)
                else None
            )
            self._namespace_object = (made,)
        return self._namespace_object[0]

    def bindings(self, data: Mapping[str, Any], lookups: Lookups | None = None) -> Bindings:
        """The bindings of the request variables ``data`` (of
        :data:`REQUEST_VARIABLES`), remembered by the identity of each value
        and of ``lookups`` (the context the resource and image libraries
        read during the evaluation: the only input an expression has besides
        its bindings)."""
        values = tuple(map(data.get, REQUEST_VARIABLES))
        key = (*map(id, values), id(lookups))
        got = self._bindings.get(key)
        if got is None:
            if not data.keys() <= set(REQUEST_VARIABLES):
                raise ValueError(f"not request variables: {sorted(data)}")
            got = self._bindings[key] = (Bindings(data), (*values, lookups))
        return got[0]


class Session:
    """A run of many policies over many objects (``verify``): each policy is
    read once (:meth:`prepared`) and each object reviewed once
    (:meth:`review`, the last object's review is kept). Nothing evaluated
    may change while the session lasts; it keeps what it has read, so an
    identity is never reused meanwhile."""

    __slots__ = ("_prepared", "_review")

    def __init__(self) -> None:
        self._prepared: dict[tuple[int, ...], tuple[Any, tuple[Any, ...]]] = {}
        self._review: Review | None = None

    def prepared(self, parts: tuple[Any, ...], make: Callable[[], T]) -> T:
        """``make()``, once per ``parts`` (by identity)."""
        # one or two parts (a policy; a VAP and its binding): the key made
        # without map (issue 21: asked per policy and object)
        if len(parts) == 1:
            key: tuple[int, ...] = (id(parts[0]),)
        elif len(parts) == 2:
            key = (id(parts[0]), id(parts[1]))
        else:
            key = tuple(map(id, parts))
        got = self._prepared.get(key)
        if got is None:
            got = self._prepared[key] = (make(), parts)
        return cast(T, got[0])

    def review(self, obj: Mapping[str, Any]) -> Review:
        if self._review is None or self._review.obj is not obj:
            self._review = Review(obj)
        return self._review


_SESSION: ContextVar[Session | None] = ContextVar("policykit_admission_session", default=None)


@contextmanager
def session() -> Iterator[Session]:
    """Evaluate in a :class:`Session` for the block."""
    made = Session()
    token = _SESSION.set(made)
    try:
        yield made
    finally:
        _SESSION.reset(token)


def current_session() -> Session | None:
    return _SESSION.get()
