"""What every pack engine offers (issue 18 item 5): :class:`Engine`, shared by
the reference engine (:class:`~policykit.engines.native.NativeEngine`), the CEL
engine (:class:`~policykit.engines.cel.CelEngine`), the Rego engines
(:class:`~policykit.engines.rego.RegopyEngine`,
:class:`~policykit.engines.rego.OpaEngine`) and the catalog wrapper
(:class:`~policykit.scaffolder.drift.WithTemplateCheck`); and
:class:`DecidingEngine`, an engine that also decides agent tool calls (the Rego
engines; the reference engine decides through :class:`policykit.decision.Decider`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from policykit.errors import PolicykitError
    from policykit.model import Document, Finding

__all__ = ["DecidingEngine", "Engine", "evaluate_guarded"]


@runtime_checkable
class Engine(Protocol):
    """Evaluates packs over documents, finding for finding as the reference engine."""

    @property
    def effective_params(self) -> dict[str, dict[str, Any]]:
        """Each pack's parameters: its defaults with the given values over them."""
        ...

    @property
    def uses_inventory(self) -> bool:
        """Whether a rule reads other objects of the run (``objects()``)."""
        ...

    def set_inventory(self, objects: Sequence[dict[str, Any]]) -> None:
        """The objects ``objects()`` reads (every object of the run)."""
        ...

    def evaluate(self, doc: Document) -> list[Finding]:
        """The findings on one document."""
        ...

    def evaluate_all(self, docs: Iterable[Document]) -> list[Finding]:
        """The findings on each document, in order."""
        ...


@runtime_checkable
class DecidingEngine(Engine, Protocol):
    """An engine that also decides agent tool calls (``main.decision``)."""

    def decide(self, call: Any) -> dict[str, Any]:
        """The decision for one tool call, as JSON."""
        ...


def evaluate_guarded(
    engine: Engine, docs: Sequence[Document], errors: list[PolicykitError]
) -> list[Finding]:
    """``engine.evaluate_all(docs)``, where an error one document causes (an
    error class marked ``per_document``) becomes that document's error entry
    in ``errors``, at its file and line, and every other document is still
    evaluated: one bad input never loses the report. A batch that raises one
    is evaluated again document by document, to find which."""
    from policykit.errors import PolicykitError

    try:
        return engine.evaluate_all(docs)
    except PolicykitError as exc:
        if not exc.per_document:
            raise
    out: list[Finding] = []
    for doc in docs:
        try:
            out.extend(engine.evaluate_all([doc]))
        except PolicykitError as exc:
            if not exc.per_document:
                raise
            errors.append(on_document(exc, doc))
    return out


def on_document(exc: PolicykitError, doc: Document) -> PolicykitError:
    """``exc`` as the error entry of ``doc``: at its file and line, naming it."""
    import copy

    from policykit.errors import SourceLoc

    err = copy.copy(exc)
    err.message = f"{doc.ref}: {exc.message}"
    err.loc = SourceLoc(doc.file, doc.line)
    err.hint = exc.hint or "this object was not evaluated by this engine; --engine native checks it"
    return err
