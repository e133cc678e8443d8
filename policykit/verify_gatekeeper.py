"""ConstraintTemplates over many objects in one real-OPA query, for ``verify``.

:class:`policykit.k8s.gatekeeper.TemplateRunner` evaluates one review per query,
as Gatekeeper's webhook does. ``verify`` runs every Kubernetes object of a run
through every template: here the templates' modules share one OPA engine (a
library module that several templates carry is added once), and a harness
module evaluates each template's ``violation`` once per object, with the
``input`` Gatekeeper gives it (``with input as``), inside one query. Real OPA
spends ~0.2 ms converting a manifest from JSON per query: each object is sent
once for all templates, not once per template.

A review is what :func:`policykit.k8s.gatekeeper.evaluate` builds
(``request_for`` plus the object, after ``spec.match``), so the violations are
the per-object ones (``tests/test_verify_sample.py`` holds the two to each
other). Gatekeeper queries ``data.<package>.violation`` with
``input = {"review": ..., "parameters": ...}``
(frameworks/constraint/pkg/client/drivers/rego/driver.go); ``data.inventory``
is the synced data, added once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from policykit.engines.rego import load_opa
from policykit.k8s import gatekeeper as gk
from policykit.k8s.gatekeeper_source import PACKAGE_RE
from policykit.k8s.request import request_for
from policykit.targets.rego.printer import string as rego_string

CHUNK = 500
"""Objects per query: each chunk is encoded to JSON on the Python side at once."""

_HARNESS = "policykit_verify_batch"


class TemplatesBatch:
    """Rego ConstraintTemplates, each with its constraint, compiled once in one
    real-OPA engine. :meth:`messages` gives per object, per pair, the ``msg``
    of each violation (None: ``spec.match`` leaves the object out). ``ok`` is
    False when the templates cannot share an engine (modules that clash, a
    template that is not Rego): the caller runs them one by one."""

    def __init__(
        self, pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], data: Any
    ) -> None:
        self.constraints = [c for _, c in pairs]
        self.ok = False
        opa = load_opa()
        self._error = opa.OpaError
        modules: dict[str, str] = {}
        packages = []
        for t, _ in pairs:
            src = gk.template_source(t)
            if src.engine != "Rego":
                return
            found = PACKAGE_RE.search(src.modules["template.rego"])
            assert found is not None
            packages.append(found.group(1))
            for text in src.modules.values():  # a shared library once, by content
                modules[hashlib.sha256(text.encode()).hexdigest()[:16] + ".rego"] = text
        if len(set(packages)) != len(packages):
            return
        engine = opa.OpaEngine()
        try:
            for path, text in sorted(modules.items()):
                engine.add_policy(path, text)
            engine.add_policy(f"{_HARNESS}.rego", _harness(packages))
            if data:
                engine.add_data({"inventory": dict(data)})
            engine.eval_document(f"{_HARNESS}.batch", {"objects": []})
        except opa.OpaError:
            return
        self._engine = engine
        self.ok = True

    def messages(self, objs: Sequence[Mapping[str, Any]]) -> list[list[list[Any] | None]] | None:
        """Per object, per constraint: the messages, or None when it does not
        match. None for the whole call when OPA fails on a batch (the caller
        runs the objects one by one, which reports the error as usual)."""
        out: list[list[list[Any] | None]] = []
        for i in range(0, len(objs), CHUNK):
            items = [_item(self.constraints, o) for o in objs[i : i + CHUNK]]
            try:
                got = self._engine.eval_document(f"{_HARNESS}.batch", {"objects": items})
            except self._error:
                return None
            if not isinstance(got, list) or len(got) != len(items):
                return None
            for item, per in zip(items, got, strict=True):
                out.append([ms if on else None for on, ms in zip(item["on"], per, strict=True)])
        return out


def _harness(packages: Sequence[str]) -> str:
    """``batch``: per object, per template, the ``msg`` of each violation."""
    lines = [f"package {_HARNESS}", ""]
    calls = []
    for i, pkg in enumerate(packages):
        lines += [
            f"_t{i}(x) := [] if not x.on[{i}]",
            "",
            f"_t{i}(x) := ms if {{",
            f"\tx.on[{i}]",
            f"\tms := [object.get(v, {rego_string('msg')}, null) | some v in data.{pkg}.violation]"
            f' with input as {{"review": x.review, "parameters": x.parameters[{i}]}}',
            "}",
            "",
        ]
        calls.append(f"_t{i}(x)")
    lines += [f"batch := [[{', '.join(calls)}] | some x in input.objects]", ""]
    return "\n".join(lines)


def _item(constraints: Sequence[Mapping[str, Any]], obj: Mapping[str, Any]) -> dict[str, Any]:
    """One object's input to the harness: its review on CREATE, and per
    constraint whether ``spec.match`` selects it and its parameters (as
    :func:`gk.evaluate`)."""
    review = request_for(obj, "CREATE")
    review["object"] = obj
    on, params = [], []
    for c in constraints:
        spec = c.get("spec") or {}
        on.append(bool(gk.match(spec.get("match"), obj, None)))
        p = spec.get("parameters")
        params.append(p if p is not None else {})
    return {"review": review, "on": on, "parameters": params}
