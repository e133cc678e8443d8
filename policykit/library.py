"""Use policykit from Python: load packs once, then check objects and decide tool calls.

[`Policy`][policykit.library.Policy] is the one entry point a program embedding
policykit needs (a Backstage backend, an MCP gateway, a CI script):

```python
from policykit import Policy

policy = Policy.load(packs=["policykit.packs.catalog"])
findings = policy.check(entity)        # list[Finding]
decision = policy.decide(call)         # Decision
```

It returns the same public types on every engine (``native``, ``opa``,
``regopy``): [`Finding`][policykit.model.Finding], the dataclass the JSON
report serialises, and [`Decision`][policykit.decision.Decision] for tool
calls. Whether an object is a Backstage entity or a Kubernetes object is read
from its ``apiVersion``; an object neither (no ``apiVersion``/``kind``) is an
[`ObjectError`][policykit.library.ObjectError], never an empty list.

The page ``docs/python.md`` has worked, tested examples.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from policykit.decision import Decider, Decision
from policykit.engines.base import DecidingEngine, Engine
from policykit.engines.native import NativeEngine, uses_inventory
from policykit.errors import InputError, PolicykitError
from policykit.ir.rule import Pack
from policykit.model import DocSource, Document, Finding, source_of
from policykit.packs import load_packs
from policykit.scaffolder import with_template_check
from policykit.toolcall import M_OBJECT, PREFIX
from policykit.values import plain as _plain

__all__ = ["ENGINES", "Decision", "EngineName", "Finding", "ObjectError", "Policy"]

EngineName = Literal["native", "opa", "regopy"]
"""The engines a [`Policy`][policykit.library.Policy] runs on."""

ENGINES: tuple[EngineName, ...] = ("native", "opa", "regopy")
_ALIASES = {"rego": "regopy"}  # the CLI's --engine name for regopy


class ObjectError(InputError, ValueError):
    """An object policykit cannot check: not a mapping, no string ``apiVersion``
    and ``kind`` (so neither a Kubernetes object nor a Backstage entity), a
    ``List`` (check its items), or not of the ``source`` asked for.

    It is a ``policykit.errors.InputError`` (code ``PK001``, a
    [`PolicykitError`][policykit.errors.PolicykitError]) and a ``ValueError``.
    """


def _what(value: Any) -> str:
    return "a list" if isinstance(value, list) else f"a {type(value).__name__}"


def classify(obj: Any, source: DocSource | None = None) -> DocSource:
    """Whether ``obj`` is a Backstage entity or a Kubernetes object (read from
    its ``apiVersion``: a ``*backstage.io`` group is Backstage).

    Args:
        obj: A JSON-like object.
        source: The source the caller expects, if any.

    Returns:
        ``"backstage"`` or ``"kubernetes"``.

    Raises:
        ObjectError: ``obj`` is neither, is a ``List``, or is not of ``source``.
    """
    if not isinstance(obj, Mapping):
        raise ObjectError(
            f"expected a Kubernetes object or a Backstage entity (a mapping), got {_what(obj)}"
        )
    api, kind = obj.get("apiVersion"), obj.get("kind")
    if not (isinstance(api, str) and api and isinstance(kind, str) and kind):
        if "tool" in obj and "agent" in obj:
            hint = "a tool call goes to Policy.decide()"
        else:
            hint = "set apiVersion and kind, e.g. backstage.io/v1alpha1 Component"
        raise ObjectError(
            "the object has no apiVersion/kind: not a Kubernetes object or a Backstage entity",
            hint=hint,
        )
    if kind == "List" and isinstance(obj.get("items"), list):
        raise ObjectError("a List is not checked as one object", hint="check_many(obj['items'])")
    from policykit.loader import metadata_problem

    wrong = metadata_problem(obj if type(obj) is dict else dict(obj))
    if wrong is not None:  # as the reader of files says it (policykit.loader)
        raise ObjectError(wrong, hint="metadata is a map; its name and namespace are strings")
    found = source_of(obj if type(obj) is dict else dict(obj))
    if source is not None and found != source:
        what = "a Backstage entity" if found == "backstage" else "a Kubernetes object"
        raise ObjectError(
            f"{kind} ({api}) is {what}, not a {source} object",
            hint="the source is read from apiVersion: a *backstage.io group is Backstage",
        )
    return found


class Policy:
    """Packs loaded once, ready to check objects and decide tool calls.

    Build one with [`Policy.load`][policykit.library.Policy.load] (pack sources
    by name or path) or ``Policy(packs)`` (built ``Pack`` objects, from
    ``PackBuilder.build()`` or ``load_packs``), then call it as often as
    needed: the packs and parameters are validated and compiled once, here.

    A policy may be shared between threads: calls are serialised by a lock
    (regopy and the reference engine's cross-object caches are not
    thread-safe).

    Args:
        packs: The packs to enforce, in order.
        params: Parameter values per pack name, over each pack's defaults
            (``{"finops": {"budgets": {...}}}``).
        engine: ``"native"`` (the reference engine, in process; the fastest),
            ``"opa"`` (real OPA, the compiled bundle's semantics) or
            ``"regopy"`` (compiled Rego on rego-cpp). Every engine gives the
            same results.

    Raises:
        PolicykitError: A pack or a parameter is invalid (``PK100``/``PK102``),
            or the engine is not installed (``PK005``).
        ValueError: An unknown engine name.
    """

    def __init__(
        self,
        packs: Sequence[Pack],
        params: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        engine: EngineName = "native",
    ) -> None:
        name = _ALIASES.get(engine, engine)
        if name not in ENGINES:
            raise ValueError(f"unknown engine {engine!r} (one of: {', '.join(ENGINES)})")
        self._packs = tuple(packs)
        self._lock = threading.Lock()
        self._uses_inventory = uses_inventory(self._packs)
        self._inventory: list[dict[str, Any]] = []
        native = NativeEngine(self._packs, params)  # validates packs and parameters once
        self._native = native
        self._decider = Decider(native)
        self._engine: Engine = native
        self._rego: DecidingEngine | None = None  # decides tool calls; None: native
        if name != "native":
            from policykit.engines.rego import OpaEngine, RegopyEngine

            if name == "opa":
                self._rego = OpaEngine(self._packs, params)
            else:  # one object per query: faster than batches in regopy (docs/engines.md)
                self._rego = RegopyEngine(self._packs, params, mode="object")
            self._engine = self._rego
        # CATALOG-016 with the catalog pack, as `policykit check` runs it: a
        # drifting Template is not let in
        self._engine = with_template_check(self._engine, self._packs, params or {})
        self._name: EngineName = name

    @classmethod
    def load(
        cls,
        packs: Sequence[str] = (),
        params: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        engine: EngineName = "native",
        base: str | Path | None = None,
    ) -> Policy:
        """Load pack sources and build a policy over them.

        Args:
            packs: Pack sources, as ``--pack`` takes them: an importable module
                (``"policykit.packs.catalog"``), a ``.py`` file defining
                ``PackBuilder``s, or an IR ``.json`` file. Empty: the shipped
                default packs. A rule ``same_as`` a rule of another loaded pack
                is left out, as in ``policykit check``.
            params: Parameter values per pack name.
            engine: ``"native"``, ``"opa"`` or ``"regopy"``.
            base: The directory relative file paths are read from (default:
                the working directory).

        Returns:
            The policy.

        Raises:
            PolicykitError: A pack cannot be loaded (``PK003``) or is invalid,
                a parameter does not fit its schema (``PK102``), or the engine is
                not installed (``PK005``).
        """
        loaded = load_packs(list(packs), Path(base) if base is not None else None)
        return cls(loaded, params, engine=engine)

    @property
    def engine(self) -> EngineName:
        """The engine's name: ``"native"``, ``"opa"`` or ``"regopy"``."""
        return self._name

    @property
    def packs(self) -> tuple[Pack, ...]:
        """The packs enforced, in order."""
        return self._packs

    @property
    def params(self) -> dict[str, dict[str, Any]]:
        """The parameters in force per pack: each pack's defaults with the
        values given over them (a copy)."""
        return {pack: dict(values) for pack, values in self._native.effective_params.items()}

    @property
    def uses_inventory(self) -> bool:
        """Whether a rule reads other objects (``objects()`` in the DSL)."""
        return self._uses_inventory

    def set_inventory(self, objects: Iterable[Mapping[str, Any]]) -> None:
        """The objects cross-object rules (``objects()``) read in later
        [`check`][policykit.library.Policy.check] calls (default: none).

        [`check_many`][policykit.library.Policy.check_many] reads its own batch
        instead, as one ``policykit check`` run does.
        """
        objs = [o if type(o) is dict else dict(o) for o in objects]
        with self._lock:
            self._inventory = objs
            if self._uses_inventory:
                self._engine.set_inventory(objs)

    def check(
        self,
        obj: Mapping[str, Any],
        *,
        source: DocSource | None = None,
        file: str = "",
        line: int = 0,
    ) -> list[Finding]:
        """The findings about one Kubernetes object or Backstage entity.

        Args:
            obj: The object, as parsed from YAML or JSON. Whether it is a
                Backstage entity or a Kubernetes object is read from its
                ``apiVersion``.
            source: ``"backstage"`` or ``"kubernetes"`` to refuse an object of
                the other kind (optional).
            file: Where the object was read, copied into each finding.
            line: Its line in ``file``, copied into each finding.

        Returns:
            One [`Finding`][policykit.model.Finding] per rule that fires (per
            item, for rules over items), sorted by item, rule and message;
            ``[]`` when the object passes every rule that selects it.

        Raises:
            ObjectError: ``obj`` is not a Kubernetes object or a Backstage
                entity, or not of ``source``.
            EngineLimitation: regopy cannot read this object (``PK010``).
        """
        obj = _plain(obj)
        classify(obj, source)
        doc = Document(obj if type(obj) is dict else dict(obj), file, 0, line)
        with self._lock:
            found: list[Finding] = self._engine.evaluate_all([doc])
        found.sort(key=Finding.sort_key)
        return found

    def check_many(
        self,
        objs: Iterable[Mapping[str, Any]],
        *,
        source: DocSource | None = None,
        file: str = "",
    ) -> list[list[Finding]]:
        """The findings about each of several objects, in one call.

        Each object is classified first, so one that cannot be checked raises
        before any is evaluated. When a rule reads other objects
        (``objects()``), the batch is its own inventory: each object is
        checked against the others, as in one ``policykit check`` run.

        Args:
            objs: The objects.
            source: ``"backstage"`` or ``"kubernetes"`` to refuse objects of the
                other kind (optional).
            file: Copied into each finding; its ``doc_index`` is the object's
                position in ``objs``.

        Returns:
            One sorted list of [`Finding`][policykit.model.Finding] per object,
            in the order of ``objs``.

        Raises:
            ObjectError: An object is not a Kubernetes object or a Backstage
                entity, or not of ``source``; the message names its position.
        """
        docs: list[Document] = []
        for i, given in enumerate(objs):
            try:
                obj = _plain(given)
                classify(obj, source)
            except ObjectError as exc:
                raise ObjectError(f"object {i}: {exc.message}", hint=exc.hint) from None
            docs.append(Document(obj if type(obj) is dict else dict(obj), file, i, 0))
        out: list[list[Finding]] = [[] for _ in docs]
        with self._lock:
            if self._uses_inventory:
                self._engine.set_inventory([d.obj for d in docs])
            try:
                found = self._engine.evaluate_all(docs)
            finally:
                if self._uses_inventory:
                    self._engine.set_inventory(self._inventory)
        for f in found:
            out[f.doc_index].append(f)
        for group in out:
            group.sort(key=Finding.sort_key)
        return out

    def decide(self, call: Any) -> Decision:
        """The runtime decision for one agent tool call.

        The call is ``{agent, tool, action, args, spend_so_far}`` (see
        ``schemas/tool-call.schema.json``); any value is accepted and the
        decision **fails closed**: what is not a call the rules can decide, or
        packs with no rule for tool calls, is denied with reasons starting
        ``policykit:``.

        Args:
            call: The call, as the gateway received it.

        Returns:
            The [`Decision`][policykit.decision.Decision]; the same on every engine.
        """
        with self._lock:
            return self._decide(call)

    def decide_many(self, calls: Iterable[Any]) -> list[Decision]:
        """[`decide`][policykit.library.Policy.decide] for each call, in order."""
        with self._lock:
            return [self._decide(c) for c in calls]

    def _decide(self, call: Any) -> Decision:
        """One decision (the lock held). Whatever the engine, the call is made
        of plain values first, and one the rules cannot decide is refused here
        with its reasons (Rego engines raised for what JSON cannot carry:
        NaN, a set, a loop); real OPA and regopy decide the rest."""
        call, refused = self._decider.prepare(call)
        if refused is not None:
            return refused
        if self._rego is None:  # native: reads only the fields its rules read
            return self._decider.decide_prepared(call)
        try:  # the Rego engines take the whole call as JSON: what JSON cannot carry is refused
            call = _plain(call)
            json.dumps(call, allow_nan=False)
        except (ValueError, TypeError, RecursionError):
            why = f"{PREFIX}{M_OBJECT} (a value JSON has no form for: NaN, Infinity, a set ...)"
            return Decision.refused(why)
        try:
            return Decision.from_json(self._rego.decide(call))
        except PolicykitError as exc:  # a value the engine cannot read (PK010): never allowed
            return Decision.refused(f"{PREFIX}{exc.message}")

    def __repr__(self) -> str:
        names = ", ".join(p.name for p in self._packs)
        return f"Policy(packs=[{names}], engine={self._name!r})"
