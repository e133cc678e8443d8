"""Sums that share one per-item body: computed once as a mapped list variable.

Two sums of one rule often differ only in their collection and in policy
variables their per-item term reads (FINOPS-005: the pod's containers priced
with the pod's GPU price, the predictor's containers with the predictor's).
Each such sum is first written as a placeholder; when the rule is compiled,
the sums whose terms are the same text (loop variable renamed, differing
``variables.*`` references abstracted) become one variable::

    variables.totals = [[dyn(L1), dyn(p1)], [dyn(L2), dyn(p2)]]
                       .map(_s, _s[0].map(c, <term reading _s[1]>).sum())

and each sum reads ``variables.totals[i]``. Every sum is still computed on its
own, in the same order (the same doubles); the body is written once. CEL has
no functions, and Kubernetes has no ``cel.bind``
(``k8s.io/apiserver/pkg/cel/environment/base.go``): a list of argument tuples
mapped once is how one text serves several inputs. Variables are evaluated
lazily, once per evaluation, and may read only earlier ones
(``ValidatingAdmissionPolicySpec.variables``), so the shared variable is
placed after every variable its arguments read and before every reader; when
no such place exists, the sums stay as they were.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from policykit.targets.cel import printer as pr

_VAR_REF = re.compile(r"variables\.([A-Za-z_][A-Za-z0-9_]*)")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PLACEHOLDER = re.compile(r"__sum(\d+)_(\d+)__")
PLAIN = re.compile(r"__\w+__")


def _chunks(e: str) -> Iterator[tuple[bool, str]]:
    """``e`` cut into (is a string literal, text) pieces."""
    i = start = 0
    while i < len(e):
        if e[i] in "'\"":
            if start < i:
                yield False, e[start:i]
            end = pr.matching_quote(e[i:])
            end = len(e) - 1 if end < 0 else i + end
            yield True, e[i : end + 1]
            i = start = end + 1
            continue
        i += 1
    if start < len(e):
        yield False, e[start:]


def rename(e: str, old: str, new: str) -> str:
    """``e`` with the identifier ``old`` written ``new`` (outside string
    literals; not after a ``.``, where it would be a field name)."""
    pat = re.compile(rf"(?<![\w.]){re.escape(old)}(?!\w)")
    return "".join(t if lit else pat.sub(new, t) for lit, t in _chunks(e))


def identifiers(e: str) -> set[str]:
    return {m.group(0) for lit, t in _chunks(e) if not lit for m in _IDENT.finditer(t)}


def var_refs(e: str) -> list[str]:
    """The ``variables.<name>`` read by ``e``, in order of first reading."""
    out: list[str] = []
    for lit, t in _chunks(e):
        if not lit:
            for m in _VAR_REF.finditer(t):
                if m.group(1) not in out:
                    out.append(m.group(1))
    return out


@dataclass(slots=True)
class _Group:
    template: str  # the term: loop variable ``var``, argument k written @k@
    var: str
    members: list[tuple[str, ...]] = field(default_factory=list)  # (collection, *arguments)
    texts: list[str] = field(default_factory=list)  # each sum as written alone


@dataclass(slots=True)
class SharedSums:
    """The sums of one rule, grouped by their term."""

    groups: list[_Group] = field(default_factory=list)

    def add(self, coll: str, var: str, term: str, alone: str) -> str:
        """A placeholder for ``coll.map(var, term).sum()`` (``alone``: that text)."""
        args = var_refs(term)
        template = term
        for k, name in enumerate(args):
            template = code_sub(rf"variables\.{name}(?!\w)", f"@{k}@", template)
        for gid, g in enumerate(self.groups):
            if g.template == rename(template, var, g.var) and len(g.members[0]) == len(args) + 1:
                member = (coll, *args)
                if member in g.members:
                    return f"__sum{gid}_{g.members.index(member)}__"
                g.members.append(member)
                g.texts.append(alone)
                return f"__sum{gid}_{len(g.members) - 1}__"
        self.groups.append(_Group(template, var, [(coll, *args)], [alone]))
        return f"__sum{len(self.groups) - 1}_0__"

    def resolve(
        self, variables: list[tuple[str, str]], taken: set[str]
    ) -> tuple[list[tuple[str, str]], Callable[[str], str]]:
        """The variables with the shared sums placed, and the rewriting to
        apply to the rule's other texts (placeholders, inlined aliases)."""
        out = list(variables)
        subst: dict[str, str] = {}
        shared: set[str] = set()  # ``variables.totals[i]``
        for gid, g in enumerate(self.groups):
            nested = "__sum" in g.template or any("__sum" in m[0] for m in g.members)
            place = self._place(gid, g, out) if len(g.members) > 1 and not nested else None
            if place is None:
                for i, text in enumerate(g.texts):
                    subst[f"__sum{gid}_{i}__"] = text
                continue
            name = _unique("totals", taken)
            taken.add(name)
            out.insert(place, (name, self._shared(g)))
            for i in range(len(g.members)):
                subst[f"__sum{gid}_{i}__"] = f"variables.{name}[{i}]"
                shared.add(f"variables.{name}[{i}]")
        out = [(n, fill(e, subst)) for n, e in out]
        return _inline_aliases(out, subst, shared)

    @staticmethod
    def _place(gid: int, g: _Group, variables: list[tuple[str, str]]) -> int | None:
        """Where the shared variable goes: after every variable its arguments
        read, before every variable reading one of its sums (but a variable
        that is only one of them, which is inlined); None: nowhere."""
        names = [n for n, _ in variables]
        read = {r for m in g.members for r in var_refs(m[0])}
        read |= {a for m in g.members for a in m[1:]}
        after = max((names.index(r) + 1 for r in read if r in names), default=0)
        tag = f"__sum{gid}_"
        first_reader = next(
            (
                i
                for i, (_, e) in enumerate(variables)
                if tag in e and not PLACEHOLDER.fullmatch(e)  # an alias is inlined
            ),
            len(variables),
        )
        return after if after <= first_reader else None

    @staticmethod
    def _shared(g: _Group) -> str:
        """``[[dyn(coll), dyn(arg)...], ...].map(_s, _s[0].map(var, term).sum())``
        with the arguments every member shares written in the term."""
        n = len(g.members[0])
        differ = [k for k in range(1, n) if len({m[k] for m in g.members}) > 1]
        tup = _unique("_s", identifiers(g.template) | {g.var})
        term = g.template
        for k in range(1, n):
            slot = differ.index(k) + 1 if k in differ else None
            arg = f"{tup}[{slot}]" if slot is not None else f"variables.{g.members[0][k]}"
            term = code_sub(f"@{k - 1}@", arg, term)
        rows = ", ".join(
            "["
            + ", ".join(f"dyn({x})" for x in (m[0], *(f"variables.{m[k]}" for k in differ)))
            + "]"
            for m in g.members
        )
        return f"[{rows}].map({tup}, {tup}[0].map({g.var}, {term}).sum())"


def fill(e: str, subst: dict[str, str]) -> str:
    """``e`` with every placeholder replaced."""
    if "__sum" not in e:
        return e
    return "".join(
        t if lit else PLACEHOLDER.sub(lambda m: subst[m.group(0)], t) for lit, t in _chunks(e)
    )


def code_sub(pattern: str, repl: str, e: str) -> str:
    """``re.sub`` outside string literals (``repl`` taken literally; a
    ``pattern`` of the form ``__name__`` is matched as it is)."""
    pat = re.compile(re.escape(pattern) if PLAIN.fullmatch(pattern) else pattern)
    return "".join(t if lit else pat.sub(lambda _: repl, t) for lit, t in _chunks(e))


def _inline_aliases(
    variables: list[tuple[str, str]], subst: dict[str, str], shared: set[str]
) -> tuple[list[tuple[str, str]], Callable[[str], str]]:
    """Drop a variable that only names an item of a shared sum
    (``variables.totalContainers = variables.totals[0]``): its readers read
    the item; returns the variables and the rewriting of the other texts."""
    alias = {n: e for n, e in variables if e in shared}

    def inline(e: str) -> str:
        e = fill(e, subst)
        if not alias or "variables." not in e:
            return e
        return "".join(
            t if lit else _VAR_REF.sub(lambda m: alias.get(m.group(1), m.group(0)), t)
            for lit, t in _chunks(e)
        )

    return [(n, inline(e)) for n, e in variables if n not in alias], inline


def _unique(name: str, taken: set[str]) -> str:
    out, i = name, 2
    while out in taken:
        out, i = f"{name}{i}", i + 1
    return out
