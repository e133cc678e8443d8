"""ConstraintTemplates over many objects in one real-OPA query, for ``verify``.

:class:`policykit.k8s.gatekeeper.TemplateRunner` evaluates one review per query,
as Gatekeeper's webhook does. ``verify`` runs every Kubernetes object of a run
through every template: here the templates' modules share one OPA engine (a
library module that several templates carry is added once), and a harness
module evaluates each template's ``violation`` once per object, with the
``input`` Gatekeeper gives it (``with input as``), inside one query.

What it costs and how the harness avoids it (measured on real OPA, 5,000
Deployments, the starter pack's four templates; docs/engines.md):

* OPA converts its input from JSON at ~3.4 MB/s, ~0.2 ms per manifest and
  query: each object is sent once, for every template, and (:class:`Joint`)
  once for the ``opa`` target's bundle too, in the same query;
* what Gatekeeper adds to an object is sent once per distinct value: the
  parameters of the constraints are data, and the review without its object,
  name and namespace (``request_for``: operation, kind, resource, user) is a
  table of shapes with, per shape, which constraints' ``spec.match`` selects
  it; an object carries ``[position, shape, name, namespace]``;
* templates whose constraints have equal parameters share one
  ``with input as`` (and a policykit template that never reads its
  parameters joins any group, :func:`parameter_groups`): the review is built
  once per object, and the input once per object and group.

The templates run as written: each reads ``input.review`` and
``input.parameters`` as Gatekeeper gives them. Gatekeeper queries
``data.<package>.violation`` with ``input = {"review": ..., "parameters": ...}``
(frameworks/constraint/pkg/client/drivers/rego/driver.go); ``data.inventory``
is the synced data, added once. A review is what
:func:`policykit.k8s.gatekeeper.evaluate` builds (``request_for`` plus the
object, after ``spec.match``), so the violations are the per-object ones
(``tests/test_verify_sample.py`` and ``tests/test_verify_shared_opa.py`` hold
the two to each other).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policykit.engines.rego import OpaEngine, load_opa
from policykit.errors import PolicykitError
from policykit.ir.rule import Pack
from policykit.k8s import gatekeeper as gk
from policykit.k8s.request import request_for
from policykit.model import Document, Finding
from policykit.targets.rego.printer import string as rego_string

CHUNK = 500
"""Objects per query: each chunk is encoded to JSON on the Python side at once."""

_HARNESS = "policykit_verify_batch"
_JOINT = "policykit_verify_joint"
_REGOPY_HARNESS = "policykit_harness"  # as TemplateRunner's
_DATA = "policykit_verify_parameters"  # data: the parameters of each group
_MESSAGES = list[list[list[Any] | None]]  # per object, per constraint: messages or None


@dataclass(frozen=True, slots=True)
class Templates:
    """Rego ConstraintTemplates with their constraints, as modules for one
    OPA engine: the templates' modules (by content), the harness, and the
    data to merge at the root (``inventory``, the constraints' parameters)."""

    constraints: list[Mapping[str, Any]]
    modules: dict[str, str]
    data: dict[str, Any]
    groups: list[list[int]]  # constraints that share an input (parameter_groups), each in order

    @classmethod
    def of(
        cls, pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], inventory: Any
    ) -> Templates | None:
        """None when the templates cannot share an engine (one is not Rego,
        two share a package)."""
        modules: dict[str, str] = {}
        packages: list[str] = []
        sees: list[bool] = []
        for t, _ in pairs:
            src = gk.template_source(t)
            if src.engine != "Rego":
                return None
            packages.append(src.package)
            sees.append(_sees_parameters(t, src))
            for text in src.modules.values():  # a shared library once, by content
                modules[hashlib.sha256(text.encode()).hexdigest()[:16] + ".rego"] = text
        if len(set(packages)) != len(packages) or {_HARNESS, _JOINT, _DATA} & set(packages):
            return None
        constraints = [c for _, c in pairs]
        grouped = parameter_groups(constraints, sees)
        groups = [members for members, _ in grouped]
        modules[f"{_HARNESS}.rego"] = _harness(packages, groups)
        data: dict[str, Any] = {_DATA: [params for _, params in grouped]}
        if inventory:
            data["inventory"] = dict(inventory)
        return cls(constraints, modules, data, groups)

    def reviews(
        self, objs: Sequence[Mapping[str, Any]], at: Sequence[int]
    ) -> tuple[dict[str, Any], list[list[bool]]]:
        """The harness's input for the objects ``objs[i]``, ``i`` in ``at``
        (``input.objects`` is ``objs``): ``gk`` (per object ``[position, shape,
        name, namespace]``) and ``gk_shapes``; and per object, per constraint,
        whether ``spec.match`` selects it (as :func:`gk.evaluate`)."""
        shapes: dict[str, int] = {}
        table: list[dict[str, Any]] = []
        rows: list[list[Any]] = []
        ons: list[list[bool]] = []
        for i in at:
            obj = objs[i]
            review = request_for(obj, "CREATE")
            name, namespace = review.pop("name"), review.pop("namespace")
            on = [bool(gk.match(_spec(c).get("match"), obj, None)) for c in self.constraints]
            key = json.dumps([review, on], sort_keys=True)
            k = shapes.get(key)
            if k is None:
                k = shapes[key] = len(table)
                groups = [any(on[j] for j in g) for g in self.groups]
                table.append({"review": review, "groups": groups, "each": on})
            rows.append([i, k, name, namespace])
            ons.append(on)
        return {"gk": rows, "gk_shapes": table}, ons

    def unpack(self, got: Any, ons: Sequence[Sequence[bool]]) -> _MESSAGES | None:
        """The harness's result (per object, per group, per constraint of the
        group) as per object, per constraint; None when it is not that."""
        if not isinstance(got, list) or len(got) != len(ons):
            return None
        out: _MESSAGES = []
        n = len(self.constraints)
        for per, on in zip(got, ons, strict=True):
            row: list[list[Any] | None] = [None] * n
            if not isinstance(per, list) or len(per) != len(self.groups):
                return None
            for g, msgs in zip(self.groups, per, strict=True):
                if not isinstance(msgs, list) or len(msgs) != len(g):
                    return None
                for j, ms in zip(g, msgs, strict=True):
                    row[j] = ms if on[j] else None
            out.append(row)
        return out


def _spec(constraint: Mapping[str, Any]) -> Mapping[str, Any]:
    return constraint.get("spec") or {}


def _parameters(constraint: Mapping[str, Any]) -> Any:
    p = _spec(constraint).get("parameters")
    return p if p is not None else {}


_INPUT_BUT_REVIEW = re.compile(r"\binput\b(?!\.review\b)")


def _sees_parameters(template: Mapping[str, Any], source: gk.TemplateSource) -> bool:
    """Whether the template (``source``: its :func:`gk.template_source`) may
    read ``input.parameters``: any but one
    policykit generated whose Rego reads nothing of its input but
    ``input.review`` (its compiler reads a rule's parameters as
    ``input.parameters.<name>``; ``tests/test_verify_shared_opa.py`` holds
    every shipped pack's templates to that). The word ``input`` anywhere else,
    a comment or a message included, counts as a read: a false alarm costs a
    group, never a wrong result."""
    if not gk.is_policykit_template(template):
        return True
    return any(_INPUT_BUT_REVIEW.search(text) for text in source.modules.values())


def parameter_groups(
    constraints: Sequence[Mapping[str, Any]], sees: Sequence[bool]
) -> list[tuple[list[int], Any]]:
    """The constraints (by position) in groups that can share one ``input``:
    those with equal parameters; one whose template never reads them
    (``sees`` False) joins the first group, since any parameters give it the
    same result (one ``with input as`` less per object in real OPA, ~60 µs;
    one regopy query less, issue 21). Each group with the parameters its input
    carries, members in order, groups in the order of their first member."""
    by_value: dict[str, list[int]] = {}
    blind: list[int] = []
    for i, c in enumerate(constraints):
        if sees[i]:
            by_value.setdefault(json.dumps(_parameters(c), sort_keys=True), []).append(i)
        else:
            blind.append(i)
    groups = [(members, _parameters(constraints[members[0]])) for members in by_value.values()]
    if not groups:
        return [(blind, _parameters(constraints[blind[0]]))] if blind else []
    groups[0] = (sorted(groups[0][0] + blind), groups[0][1])
    return sorted(groups, key=lambda g: g[0][0])


def _harness(packages: Sequence[str], groups: Sequence[Sequence[int]]) -> str:
    """``gk``: per object, per group of constraints that share an input
    (:func:`parameter_groups`), per constraint of the group, the ``msg`` of
    each violation (``[]`` where ``spec.match`` leaves the object out: the
    template is not evaluated)."""
    lines = [f"package {_HARNESS}", ""]
    for i, pkg in enumerate(packages):
        lines += [
            f"_t{i}(on) := [] if not on[{i}]",
            "",
            f"_t{i}(on) := [object.get(v, {rego_string('msg')}, null) |",
            f"\tsome v in data.{pkg}.violation",
            f"] if on[{i}]",
            "",
        ]
    calls = []
    for g, members in enumerate(groups):
        skipped = ", ".join("[]" for _ in members)
        lines += [
            f"_g{g}(_, shape) := [{skipped}] if not shape.groups[{g}]",
            "",
            f"_g{g}(review, shape) := ms if {{",
            f"\tshape.groups[{g}]",
            f"\tms := [{', '.join(f'_t{i}(shape.each)' for i in members)}]"
            f' with input as {{"review": review, "parameters": data.{_DATA}[{g}]}}',
            "}",
            "",
        ]
        calls.append(f"_g{g}(review, shape)")
    lines += [
        "gk := [[" + ", ".join(calls) + "] |",
        "\tsome row in input.gk",
        "\tshape := input.gk_shapes[row[1]]",
        "\treview := object.union(shape.review, "
        '{"name": row[2], "namespace": row[3], "object": input.objects[row[0]]})',
        "]",
        "",
    ]
    return "\n".join(lines)


class TemplatesBatch:
    """The templates, each with its constraint, compiled once in one real-OPA
    engine. :meth:`messages` gives per object, per pair, the ``msg`` of each
    violation (None: ``spec.match`` leaves the object out). ``ok`` is False
    when the templates cannot share an engine (modules that clash, a template
    that is not Rego): the caller runs them one by one."""

    def __init__(
        self, pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], data: Any
    ) -> None:
        self.ok = False
        opa = load_opa()
        self._error = opa.OpaError
        templates = Templates.of(pairs, data)
        if templates is None:
            return
        self.templates = templates
        engine = opa.OpaEngine()
        try:
            for path, text in sorted(templates.modules.items()):
                engine.add_policy(path, text)
            engine.add_data(templates.data)
            engine.eval_document(f"{_HARNESS}.gk", {"objects": [], "gk": [], "gk_shapes": []})
        except opa.OpaError:
            return
        self._engine = engine
        self.ok = True

    def messages(self, objs: Sequence[Mapping[str, Any]]) -> _MESSAGES | None:
        """Per object, per constraint: the messages, or None when it does not
        match. None for the whole call when OPA fails on a batch (the caller
        runs the objects one by one, which reports the error as usual)."""
        out: _MESSAGES = []
        for i in range(0, len(objs), CHUNK):
            part = objs[i : i + CHUNK]
            extra, ons = self.templates.reviews(part, range(len(part)))
            try:
                got = self._engine.eval_document(f"{_HARNESS}.gk", {"objects": part, **extra})
            except self._error:
                return None
            per = self.templates.unpack(got, ons)
            if per is None:
                return None
            out += per
        return out


class Joint:
    """The ``opa`` target's bundle and the Gatekeeper templates in one
    real-OPA engine: one query per chunk sends each object once and gives its
    bundle findings (``data.<root>.main.batch``, as the ``opa`` target reads
    them) and, for the objects admission sees, each template's messages.
    Building raises :class:`PolicykitError` when the two cannot share an
    engine; :meth:`run` gives None when OPA fails on a chunk (the caller runs
    the two targets apart, which reports the error as usual)."""

    def __init__(
        self,
        packs: Sequence[Pack],
        params: Mapping[str, Mapping[str, Any]],
        inventory: list[Any] | None,
        pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
        gk_inventory: Any,
    ) -> None:
        templates = Templates.of(pairs, gk_inventory)
        if templates is None:
            raise PolicykitError("the templates cannot share an engine")
        modules = dict(templates.modules)
        root = "policykit"
        modules[f"{_JOINT}.rego"] = (
            f"package {_JOINT}\n\n"
            f'out := {{"bundle": data.{root}.main.batch, "gk": data.{_HARNESS}.gk}}\n'
        )
        self.templates = templates
        self.engine = OpaEngine(
            packs, params, root=root, mode="batch", extra_modules=modules,
            extra_data=templates.data, inventory=inventory,
        )  # fmt: skip
        self._error = load_opa().OpaError

    def run(
        self, docs: Sequence[Document], admitted: Sequence[bool]
    ) -> tuple[list[list[Finding]], _MESSAGES] | None:
        """Per document, its bundle findings; per admitted document, per
        constraint, its messages (None: not matched)."""
        chunk = self.engine.batch_size(len(docs))
        findings: list[list[Finding]] = []
        messages: _MESSAGES = []
        for lo in range(0, len(docs), chunk):
            part = docs[lo : lo + chunk]
            objs = [d.obj for d in part]
            at = [i for i in range(len(part)) if admitted[lo + i]]
            extra, ons = self.templates.reviews(objs, at)
            try:
                got = self.engine.query(f"{_JOINT}.out", {"objects": objs, **extra})
            except self._error:
                return None
            if not isinstance(got, dict):
                return None
            bundle, per = got.get("bundle"), self.templates.unpack(got.get("gk"), ons)
            if per is None or not isinstance(bundle, list) or len(bundle) != len(part):
                return None
            findings += self.engine.findings_of(part, bundle)
            messages += per
        return findings, messages


class RegopyGroups:
    """The templates in regopy, for ``verify``: the templates whose
    constraints can share an input (:func:`parameter_groups`) and the same
    ``data`` share one regopy bundle, queried once per object that one of them
    selects, with the review Gatekeeper gives each of them, instead of once per
    template (regopy turns the whole input into its own terms on every query:
    the starter pack's four templates in one query; regopy crashes on ``with
    input as`` over a ref, so one query per group, not per object). A grouped
    template's own runner is built only if an object needs it. A template that
    is not policykit's, and a group query regopy fails on, run on one
    :class:`~policykit.k8s.gatekeeper.TemplateRunner` per template that
    selects the object, which reports errors as before."""

    def __init__(
        self,
        pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
        inventory: Callable[[Mapping[str, Any]], Any],
    ) -> None:
        import regopy

        self.pairs = list(pairs)
        self.inventory = inventory
        self._sources = [gk.template_source(t) for t, _ in self.pairs]
        # policykit's Rego templates, apart by whether they read data.inventory
        kinds: dict[bool, list[int]] = {}
        for i, (t, c) in enumerate(self.pairs):
            if self._sources[i].engine == "Rego" and gk.is_policykit_template(t):
                kinds.setdefault(inventory(c) is not None, []).append(i)
        self.groups: list[tuple[list[int], Any, Any]] = []  # members, bundle, parameters
        for apart in kinds.values():
            constraints = [self.pairs[i][1] for i in apart]
            seen = [_sees_parameters(self.pairs[i][0], self._sources[i]) for i in apart]
            for local, parameters in parameter_groups(constraints, seen):
                members = [apart[j] for j in local]
                bundle = self._bundle(members) if len(members) > 1 else None
                if bundle is not None:
                    self.groups.append((members, bundle, parameters))
        grouped = {i for members, _, _ in self.groups for i in members}
        # the others' runners now (their errors surface now); a group's when
        # an object needs them
        self._runners = {
            i: gk.TemplateRunner(t, "rego")
            for i, (t, _) in enumerate(self.pairs)
            if i not in grouped
        }
        self._interpreter = regopy.Interpreter()

    def _runner(self, i: int) -> gk.TemplateRunner:
        if i not in self._runners:
            self._runners[i] = gk.TemplateRunner(self.pairs[i][0], "rego")
        return self._runners[i]

    def _bundle(self, members: Sequence[int]) -> Any:
        """The members' modules (as :class:`gk.TemplateRunner` gives them to
        regopy, a shared library once) and a harness; None if regopy refuses."""
        import regopy

        from policykit.engines.rego import EngineLimitation, refuse_quoted
        from policykit.targets.rego.compiler import regopy_modules

        modules: dict[str, str] = {}
        packages: list[str] = []
        for i in members:
            packages.append(self._sources[i].package)
            for text in regopy_modules(dict(self._sources[i].modules)).values():
                modules[hashlib.sha256(text.encode()).hexdigest()[:16] + ".rego"] = text
        if len(set(packages)) != len(packages) or _REGOPY_HARNESS in packages:
            return None
        each = ", ".join(f"[base64.encode(v.msg) | some v in data.{p}.violation]" for p in packages)
        modules["harness.rego"] = f"package {_REGOPY_HARNESS}\n\nviolations := [{each}]\n"
        builder = regopy.Interpreter()
        data = self.inventory(self.pairs[members[0]][1])
        try:
            for path, text in modules.items():
                builder.add_module(path, text)
            if data:
                refuse_quoted({"inventory": data}, "the inventory")
                builder.add_data({"inventory": data})
            return builder.build(None, [f"{_REGOPY_HARNESS}/violations"])
        except (regopy.RegoError, EngineLimitation):
            return None

    def messages(self, obj: Mapping[str, Any]) -> list[list[str]]:
        """Per pair, the messages of its violations for ``obj`` (none when
        ``spec.match`` leaves it out), as :func:`gk.evaluate` gives them."""
        on = [bool(gk.match(_spec(c).get("match"), obj, None)) for _, c in self.pairs]
        # one that spec.match leaves out gives none, as gk.evaluate would, and
        # needs no runner of its own
        out: list[list[str] | None] = [None if o else [] for o in on]
        review = request_for(obj, "CREATE")
        review["object"] = obj
        for members, bundle, parameters in self.groups:
            # a member spec.match leaves out is evaluated too, and what it
            # gives is dropped (if it errors, the query gives None and the
            # selected members run one by one)
            if any(on[i] for i in members):
                got = self._query(bundle, {"review": review, "parameters": parameters})
                if got is not None and len(got) == len(members):
                    for i, msgs in zip(members, got, strict=True):
                        if on[i]:
                            out[i] = msgs
        return [
            got
            if got is not None
            else [
                v.message for v in gk.evaluate(self._runner(i), c, obj, inventory=self.inventory(c))
            ]
            for i, (got, (_, c)) in enumerate(zip(out, self.pairs, strict=True))
        ]

    def _query(self, bundle: Any, doc: Mapping[str, Any]) -> list[list[str]] | None:
        """The harness's messages, or None where :class:`gk.TemplateRunner`
        would raise (it runs them then, and says why)."""
        import regopy

        from policykit.engines.rego import EngineLimitation, refuse_quoted, regopy_input

        try:
            refuse_quoted(doc, "the admission review")
            self._interpreter.set_input(regopy_input(doc))
            results = self._interpreter.query_bundle_entrypoint(
                bundle, f"{_REGOPY_HARNESS}/violations"
            ).results
            found = results[0].expressions[0] if results and results[0].expressions else None
            if not isinstance(found, list):
                return None
            return [[base64.b64decode(m).decode("utf-8") for m in ms] for ms in found]
        except (EngineLimitation, ValueError, TypeError, regopy.RegoError):
            return None
