"""The CEL texts of an admission policy: every expression in a document, what
reaches outside the object under review (policykit refuses it unless a test's
context file backs it), and each expression with cel-go's behaviours spelled
out for cel-cpp (:mod:`policykit.k8s.celcompat`). Used by the evaluators of
:mod:`policykit.k8s.validating` and the runner for existing policies."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from policykit.engines.cel import CelEvalError, program
from policykit.k8s import celcompat
from policykit.k8s.errors import Unsupported
from policykit.k8s.request import Context

_OUTSIDE_CEL = (
    (re.compile(r"\bhttp\.(?:Get|Post|Client)\b"), "the http CEL library"),
    (re.compile(r"\bresource\.(?:Get|List|Post)\b"), "the resource CEL library"),
    (re.compile(r"\bglobalContext\.Get\b"), "globalContext"),
    (re.compile(r"\bimage\.GetMetadata\b"), "image metadata lookups"),
    (re.compile(r"\bimagedata\."), "the imagedata library"),
)
_CONTEXT_BACKED = ("the resource CEL library", "image metadata lookups")
CEL_KEYS = ("expression", "messageExpression", "valueExpression")


def cel_texts(node: Any) -> list[str]:
    """Every CEL expression in a policy document."""
    out: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k in CEL_KEYS and isinstance(v, str):
                out.append(v)
            else:
                out += cel_texts(v)
    elif isinstance(node, list):
        for v in node:
            out += cel_texts(v)
    return out


def refuse_outside(texts: Sequence[str], where: str, ctx: Context | None = None) -> None:
    """:class:`Unsupported` for CEL that reaches outside the object (unless a
    kyverno-test context file backs the resource and image libraries)."""
    what = outside_use(texts, backed=ctx is not None and ctx.lookups is not None)
    if what is not None:
        raise Unsupported(f"{where} uses {what}")


def outside_use(texts: Sequence[str], *, backed: bool) -> str | None:
    """What in ``texts`` reaches outside the object, if anything (``backed``: a
    context file backs the resource and image libraries)."""
    for text in texts:
        for pattern, what in _OUTSIDE_CEL:
            if backed and what in _CONTEXT_BACKED:
                continue  # backed by the test's context file
            if pattern.search(text):
                return what
    return None


def unknown_library(exc: CelEvalError, where: str) -> None:
    """:class:`Unsupported` when an error may be a function policykit lacks: an
    undeclared one, or no overload for the arguments (cel-cpp lacks some that
    cel-go has, ``duration(int)`` say, so a third-party policy that errs so is
    not run rather than scored; ``verify`` reads the same error on policykit's
    own policies, whose functions are all provided, as the data's)."""
    text = exc.message
    if "undeclared reference" in text or "no matching overload" in text.lower():
        raise Unsupported(f"{where} uses a CEL function policykit does not provide ({text[:120]})")


@lru_cache(maxsize=8192)
def compat_expression(source: str) -> str:
    """``source`` with cel-go's behaviours spelled out (:mod:`policykit.k8s.celcompat`),
    or as written when the rewrite does not compile."""
    rewritten = celcompat.rewrite(source)
    if rewritten == source:
        return source
    try:
        program(rewritten)
    except CelEvalError:
        return source
    return rewritten


def cel_go_compat(node: Any) -> Any:
    """A spec with every CEL expression through :func:`compat_expression`
    (Kyverno compiles them with cel-go and its ``orValue`` compatibility,
    pkg/cel/compiler/env.go)."""
    if isinstance(node, dict):
        return {
            k: compat_expression(v) if k in CEL_KEYS and isinstance(v, str) else cel_go_compat(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [cel_go_compat(v) for v in node]
    return node
