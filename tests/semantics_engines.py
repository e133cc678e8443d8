"""The engines as the semantics laws (tests/test_semantics.py) see them: one
test body per law, run on every engine (as ibis runs one test body on every
backend; issue 18 item 6).

The reference engine evaluates each node directly. Every other engine is given
the nodes as the conditions of a one-pack policy over a ConfigMap and says which
rules fired; a value is probed through ``==`` (and missing through ``v == v``
being false). What an engine may not express comes from the capability table
(``policykit/targets/capabilities.json``): a feature marked ``no`` or ``skip``
for the engine's target skips the law there; a ``partial`` one is tried, and the
compiler's refusal (PK2xx) skips it with its reason; a refusal of a feature
marked ``yes`` fails. The table's "in doubles" notes say where CEL's arithmetic
is not exact, and those laws assert the double result there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import assume
from hypothesis.control import currently_in_test_context

from policykit.api import make_engine
from policykit.engines.rego import misread, quote_wrapped
from policykit.ir import nodes as ir
from policykit.ir.rule import Message, Pack, ParamSpec, Rule, Selector
from policykit.model import Document
from policykit.targets.base import UnsupportedError
from policykit.targets.features import features_of, level, table
from policykit.values import MISSING, json_equal, render
from tests.conftest import eval_pred, eval_value

ENGINES = ("native", "rego", "opa", "cel", "jsonschema")
# the capability table's column for each engine (the CEL engine runs what Kyverno ships)
TARGET = {"rego": "rego", "opa": "rego", "cel": "kyverno", "jsonschema": "jsonschema"}
HEAD = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "law"}}
ALWAYS = ir.And(())
WANT = "want"  # where a value probe puts the expected value in the object


def path(*segs: str | int) -> ir.Path:
    return ir.Path(ir.OBJECT_ROOT, tuple(segs))


def lit(v: Any) -> ir.Literal:
    return ir.Literal(tuple(v) if isinstance(v, list) else v)


def _pack(
    conds: Sequence[ir.Pred], msgs: Sequence[ir.Value | None], params: Mapping[str, Any]
) -> Pack:
    rules = tuple(
        Rule(
            id=f"LAW-{i + 1:03d}",
            title="law",
            severity="deny",
            condition=c,
            message=Message(("=", m) if m is not None else ("fired",)),
            selector=Selector(kinds=("ConfigMap",)),
        )
        for i, (c, m) in enumerate(zip(conds, msgs, strict=True))
    )
    specs = tuple(ParamSpec(k, {}, v) for k, v in sorted(params.items()))
    return Pack("laws", "1.0.0", rules, specs)


def _leaves(v: Any) -> Iterator[Any]:
    if isinstance(v, Mapping):  # keys too: cel-cpp reads '' and '\x00' as one key
        for k, x in v.items():
            yield k
            yield from _leaves(x)
    elif isinstance(v, (list, tuple)):
        for x in v:
            yield from _leaves(x)
    else:
        yield v


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# Engine defects the laws found (not capabilities: the table has no row for them).
# An input that meets one is left out (a hypothesis example) or the test is an
# expected failure: (engines, "verdicts"/"messages"/"both", input leaf, reason).
DEFECTS: list[tuple[tuple[str, ...], str, Callable[[list[Any]], bool], str]] = [
    (
        ("rego",),
        "verdicts",
        lambda vs: _close(vs) or any(_number(v) and not 1e-6 < abs(v) < 2**63 for v in vs if v),
        "regopy takes numbers within about 1e-7 of each other as equal "
        "(0.618453 == 0.618453 * (1 - 1e-7); 4.5e-62 == 0), and integers past int64 wrongly",
    ),
    (
        ("rego",),
        "messages",
        lambda vs: any(_number(v) and abs(v) >= 2**53 for v in vs),
        "regopy renders an integral double past 2^53 by its binary value "
        "(3.743325539123671e+16 as 37433255391236712), and past int64 as the empty string",
    ),
    (
        ("opa",),
        "messages",
        lambda vs: any(_number(v) and abs(v) >= 2**63 for v in vs),
        "OPA renders a double past int64 with a tail of decimals "
        "(2.3126016810840141e+21 as 2312601681084014099968.00000010780672)",
    ),
    (
        ("rego", "cel"),
        "both",
        lambda vs: any(isinstance(v, str) and "\x00" in v for v in vs),
        "regopy and cel-cpp end a string at NUL (the length of '\\x00' is 0)",
    ),
    (
        ("cel",),
        "messages",
        lambda vs: any(isinstance(v, float) and abs(v) >= 2**53 for v in vs),
        "cel-cpp renders an integral double past 2^53 by its binary value "
        "(2.264054874606761e+16 as 22640548746067608), and from 1e21 in exponent form (1e+21)",
    ),
]


def _close(vs: list[Any]) -> bool:
    """Two different numbers (or one and 0) within a relative 1e-6 of each other."""
    nums = sorted({float(v) for v in vs if _number(v)} | {0.0})
    return any(b - a <= 1e-6 * max(abs(a), abs(b)) for a, b in pairwise(nums))


def _unsupported(reason: str) -> None:
    """Leave this example out (under hypothesis), or expect the test to fail."""
    if currently_in_test_context():
        assume(False)
    pytest.xfail(reason)


_ENGINES: dict[str, Any] = {}  # built once per engine and pack: hypothesis reuses them


class Engine:
    """One engine as the laws see it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.target = TARGET.get(name, "")

    def __repr__(self) -> str:
        return self.name

    def doubles(self, *features: str) -> str:
        """The table's note when the target computes ``features`` in doubles."""
        for f in features:
            note = table()["features"][f].get("note", {}).get(self.target, "")
            if "double" in note:
                return f"{self.target}: {f} {note}"
        return ""

    def holds(
        self,
        preds: Sequence[ir.Pred],
        obj: Mapping[str, Any],
        params: Mapping[str, Any] | None = None,
    ) -> list[bool]:
        """Each predicate's verdict on ``obj``."""
        params = params or {}
        if self.name == "native":
            return [eval_pred(p, obj, dict(params)) for p in preds]
        fired = self._run(preds, [None] * len(preds), obj, params)
        return [f"LAW-{i + 1:03d}" in fired for i in range(len(preds))]

    def is_(
        self,
        node: ir.Value,
        obj: Mapping[str, Any],
        expected: Any,
        params: Mapping[str, Any] | None = None,
    ) -> bool:
        """Whether ``node`` is ``expected`` (MISSING: absent) on ``obj``."""
        if self.name == "native":
            got = eval_value(node, obj, dict(params or {}))
            if expected is MISSING or got is MISSING:
                return got is expected
            return json_equal(got, expected)
        if expected is MISSING:
            return self.holds([ir.Not(ir.Compare("==", node, node))], obj, params)[0]
        if self.target == "jsonschema":  # compares with constants only (cheap to rebuild)
            return self.holds([ir.Compare("==", node, lit(expected))], obj, params)[0]
        # the expected value is read from the object, so that the policy is built
        # once for all the examples hypothesis draws
        want = ir.Compare("==", node, path(WANT))
        return self.holds([want], {**obj, WANT: expected}, params)[0]

    def near(self, node: ir.Value, obj: Mapping[str, Any], expected: float) -> bool:
        """Whether ``node`` is within a relative 1e-12 of ``expected`` (a double)."""
        # regopy takes numbers within about 1e-7 as equal (DEFECTS): probed wider
        tol = 1e-5 if self.name == "rego" else 1e-12
        lo, hi = sorted([expected * (1 - tol), expected * (1 + tol)])
        if self.name == "native":
            got = eval_value(node, obj)
            return got is not MISSING and lo <= got <= hi
        preds = [ir.Compare(">=", node, path(WANT, 0)), ir.Compare("<=", node, path(WANT, 1))]
        return self.holds(preds, {**obj, WANT: [lo, hi]}) == [True, True]

    def rendered(
        self, nodes: Sequence[ir.Value], obj: Mapping[str, Any], *, screen: bool = True
    ) -> list[str]:
        """Each value rendered into a message."""
        if self.name == "native":
            return [render(eval_value(n, obj)) for n in nodes]
        if self.target == "jsonschema":
            pytest.skip("jsonschema: Message is partial in the capability table (a verdict only)")
        fired = self._run([ALWAYS] * len(nodes), nodes, obj, {}, screen=screen)
        return [fired[f"LAW-{i + 1:03d}"].removeprefix("=") for i in range(len(nodes))]

    def _run(
        self,
        conds: Sequence[ir.Pred],
        msgs: Sequence[ir.Value | None],
        obj: Mapping[str, Any],
        params: Mapping[str, Any],
        *,
        screen: bool = True,
    ) -> dict[str, str]:
        pack = _pack(conds, msgs, params)
        verdicts = all(m is None for m in msgs)
        if self.name == "rego" and quote_wrapped([obj, params, repr(pack)]) is not None:
            _unsupported("regopy refuses strings wrapped in double quotes (PK010)")
        if screen and self.name == "rego" and misread(obj) is not None:
            _unsupported("regopy refuses floats past six decimals and NULs (PK010)")
        for engines, on, applies, reason in DEFECTS if screen else ():
            kind = "verdicts" if verdicts else "messages"
            if self.name in engines and on in ("both", kind) and applies(list(_leaves(obj))):
                _unsupported(reason)
        key = f"{self.name} {pack!r} {json.dumps(params, sort_keys=True)}"
        if key not in _ENGINES:
            _ENGINES[key] = self._build(pack, params)
        doc = {**HEAD, **obj}
        engine = _ENGINES[key]
        if self.target == "jsonschema":
            return {rule: "" for _, rule in engine.fired(doc)}
        return {f.rule: f.message for f in engine.evaluate(Document(doc, "law.yaml", 0, 1))}

    def _build(self, pack: Pack, params: Mapping[str, Any]) -> Any:
        for rule in pack.rules:
            for f in sorted(features_of(rule)):
                if level(f, self.target) in ("no", "skip"):
                    pytest.skip(
                        f"{self.target}: {f} is {level(f, self.target)!r} in the capability table"
                    )
        partial = sorted(
            {f for r in pack.rules for f in features_of(r) if level(f, self.target) == "partial"}
        )
        try:
            if self.target == "jsonschema":
                from policykit.engines.jsonschema import SchemaChecker
                from policykit.targets.jsonschema import compile_pack

                uncovered = compile_pack(pack, params).uncovered
                if uncovered:
                    raise UnsupportedError(uncovered[0][1])
                return SchemaChecker([pack], {pack.name: params})
            return make_engine(self.name, [pack], {pack.name: params})
        except UnsupportedError as e:
            if not partial:
                raise  # the table says the target can: a refusal is a bug
            pytest.skip(
                f"{self.target}: {', '.join(partial)} partial in the capability table: {e.message}"
            )


# the laws hypothesis draws for: on every engine with --all (CI); in a plain run on
# the reference engine only (the fixed examples run on every engine either way)
DRAWN = pytest.mark.parametrize(
    "engine",
    [ENGINES[0], *(pytest.param(e, marks=pytest.mark.slow) for e in ENGINES[1:])],
    indirect=True,
)


@pytest.fixture(params=ENGINES, scope="module")
def engine(request: pytest.FixtureRequest) -> Engine:
    return Engine(request.param)
