"""Evaluating compiled Rego: regopy (rego-cpp) and, as the oracle, real OPA.

Both engines load exactly what a bundle holds (modules + ``data.json``) and
query ``data.<root>.main.batch`` over chunks of objects, or
``data.<root>.main.violations`` with one object as ``input``. regopy runs its
compiled-bundle path (``build`` once, then ``query_bundle_entrypoint``), never
re-parsing per object.
"""

from __future__ import annotations

import base64
import ctypes
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from policykit.engines.native import NativeEngine, uses_inventory
from policykit.errors import EngineUnavailable as EngineUnavailable  # re-exported
from policykit.errors import PolicykitError, SourceLoc
from policykit.ir.rule import Pack
from policykit.model import Document, Finding, object_ref
from policykit.targets.rego.compiler import (
    RegoOptions,
    compile_packs,
    params_data,
    params_module,
    regopy_modules,
    under_root,
)
from policykit.targets.rego.printer import term as rego_term

Mode = Literal["batch", "object"]
DEFAULT_CHUNK = 500


class EngineLimitation(PolicykitError):
    """Data an engine is known to read wrongly (docs/engines.md)."""

    code = "PK010"
    per_document = True


def quote_wrapped(v: Any) -> str | None:
    """The first string in ``v`` (keys included) that starts and ends with a
    double quote: regopy strips those quotes when it reads such a string."""
    if isinstance(v, str):
        return v if len(v) >= 2 and v[0] == '"' and v[-1] == '"' else None
    if isinstance(v, dict):
        for k, x in v.items():
            found = quote_wrapped(k) or quote_wrapped(x)
            if found:
                return found
    if isinstance(v, list):
        for x in v:
            found = quote_wrapped(x)
            if found:
                return found
    return None


def six_decimals_lose(v: float) -> bool:
    """Whether regopy reads the float ``v`` otherwise: ``regoInputFloat`` keeps
    six decimals (``1e-07`` is 0)."""
    return float(f"{v:f}") != v


class InventoryLimitation(EngineLimitation):
    """An inventory object regopy would read wrongly: it fails the inventory
    (every object's cross-object rules), not one object's evaluation."""

    per_document = False


def misread(v: Any) -> str | None:
    """A value in ``v`` (keys included) that regopy's input reads otherwise,
    described: a quote-wrapped string (:func:`quote_wrapped`), a float with
    more than six decimals, a string with a NUL (:func:`regopy_input` refuses
    the last two); None when regopy reads all of ``v`` as it is."""
    found = quote_wrapped(v)
    if found is not None:
        return f"the quote-wrapped string {found[:40]!r}"
    if isinstance(v, float):
        return f"the number {v!r}" if six_decimals_lose(v) else None
    if isinstance(v, str):
        return f"the string {v[:40]!r}" if "\x00" in v else None
    items = list(v.items()) if isinstance(v, dict) else enumerate(v) if isinstance(v, list) else ()
    for k, x in items:
        got = misread(k) or misread(x)
        if got is not None:
            return got
    return None


def refuse_quoted(value: Any, where: str, loc: Any = None) -> None:
    found = quote_wrapped(value)
    if found is not None:
        raise EngineLimitation(
            f"regopy would read the string {found[:40]!r} in {where} without its surrounding "
            "double quotes (a regopy defect)",
            loc=loc,
            hint="check it with --engine opa or --engine native",
        )


_CONTROL_HEX = re.compile(r"\\x(?:[01][0-9a-fA-F]|7[fF])")
_PARAM_UNREADABLE = re.compile(r"\\x[0-9a-fA-F]{2}|\(\?P<")


def refuse_unreadable_patterns(
    packs: Sequence[Pack], params: Mapping[str, Mapping[str, Any]]
) -> None:
    """:class:`EngineLimitation` for a regex regopy cannot read as RE2 does: a
    ``\\xHH`` escape of a control character in a literal pattern (the Rego
    compiler spells every other ``\\x`` and named group as regopy reads them,
    :func:`policykit.targets.rego.printer.regopy_spelling`), and in a pattern
    given as a parameter either of those or a named group ``(?P<name>``: regopy
    failed with unreadable output, or the group matched nothing, silently."""
    from policykit.ir import nodes as ir

    for pack in packs:
        for rule in pack.rules:
            for node in ir.walk(rule.condition):
                if not isinstance(node, ir.Matches):
                    continue
                pat = node.pattern
                text: Any = None
                if isinstance(pat, ir.Literal):
                    text, given, bad = pat.value, "pattern", _CONTROL_HEX
                elif isinstance(pat, ir.Param):
                    text = params.get(pack.name, {}).get(pat.name)
                    given, bad = f"parameter {pat.name}", _PARAM_UNREADABLE
                found = bad.search(text) if isinstance(text, str) else None
                if found is not None:
                    raise EngineLimitation(
                        f"rule {rule.id}: regopy cannot run the {given} {text!r} "
                        f"({found.group(0)!r}: a regopy defect, docs/engines.md)",
                        loc=rule.loc,
                        hint="check it with --engine opa or --engine native",
                    )


class _RegoBase:
    """What the Rego engines share: compiling, parameters and result decoding."""

    def __init__(
        self,
        packs: Sequence[Pack],
        params: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        root: str = "policykit",
        mode: Mode = "batch",
        chunk: int = DEFAULT_CHUNK,
        inventory: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        """``inventory``: as :meth:`set_inventory`, given before the engine is
        first compiled (so it is compiled once, with it)."""
        # The native engine validates packs and parameters exactly once, as check does.
        native = NativeEngine(packs, params)
        self.effective_params = native.effective_params
        self.packs = tuple(packs)
        self.options = RegoOptions(root=root)
        self.modules = compile_packs(self.packs, self.options)
        self.data = params_data(self.packs, native.effective_params, root)
        self.mode = mode
        self.chunk = chunk
        self._base = root.replace(".", "/")
        self._pack_of = {r.id: p.name for p in self.packs for r in p.rules}

        self.inventory: list[dict[str, Any]] | None = (
            list(inventory) if inventory is not None and uses_inventory(self.packs) else None
        )

    @property
    def uses_inventory(self) -> bool:
        return uses_inventory(self.packs)

    def set_inventory(self, objects: Sequence[dict[str, Any]]) -> None:
        """The objects ``Objects`` reads, as ``data.<root>.inventory``; only
        packs that read the inventory are given it (it is the whole run)."""
        if uses_inventory(self.packs):
            self.inventory = list(objects)
            self._build()  # the data changed

    def decide(self, call: Any) -> dict[str, Any]:
        """The runtime decision for one agent tool call (``main.decision``); any
        JSON value is a valid input (what is not a call is denied)."""
        result = self._query("decision", dict(call) if isinstance(call, Mapping) else call)
        if not isinstance(result, dict):
            raise PolicykitError(f"Rego decision returned {type(result).__name__}, not an object")
        return result

    def _build(self) -> None:
        """Compile the modules with the parameters and the inventory."""
        raise NotImplementedError

    def _query(self, entry: str, input_doc: Any) -> Any:
        raise NotImplementedError

    def batch_size(self, n: int) -> int:
        """Objects per batch query, for a run of ``n``: with an inventory, all
        of them in one query (the indexes of its joins are rules that OPA and
        regopy evaluate once per query), else :attr:`chunk`."""
        return max(n, 1) if self.inventory is not None else self.chunk

    def raw_batch(self, objects: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """One list of finding objects (as Rego returns them) per input object."""
        out: list[list[dict[str, Any]]] = []
        if self.mode == "object":
            for o in objects:
                out.append(self._query("violations", o) or [])
            return out
        chunk = self.batch_size(len(objects))
        for i in range(0, len(objects), chunk):
            part = objects[i : i + chunk]
            result = self._query("batch", {"objects": part})
            if not isinstance(result, list) or len(result) != len(part):
                raise PolicykitError(f"Rego batch returned {type(result).__name__}, not a list")
            out.extend(result)
        return out

    def evaluate_all(self, docs: Iterable[Document]) -> list[Finding]:
        return [f for found in self.evaluate_each(docs) for f in found]

    def evaluate_each(self, docs: Iterable[Document]) -> list[list[Finding]]:
        """The findings of each document, in order (in batches of ``chunk``
        documents in batch mode, whatever file each comes from)."""
        docs = list(docs)
        return self.findings_of(docs, self.raw_batch([d.obj for d in docs]))

    def findings_of(
        self, docs: Sequence[Document], results: Sequence[Sequence[Mapping[str, Any]]]
    ) -> list[list[Finding]]:
        """The findings of each document from its finding objects (as Rego
        returns them, one list per document)."""
        out: list[list[Finding]] = []
        for doc, raw in zip(docs, results, strict=True):
            ref = object_ref(doc.obj, doc.source)
            out.append(
                [
                    Finding(
                        rule=f["id"],
                        pack=f["pack"],
                        severity=f["severity"],
                        message=f["msg"],
                        object=ref,
                        file=doc.file,
                        doc_index=doc.index,
                        line=doc.line,
                        item=f.get("item"),
                    )
                    for f in raw
                ]
            )
        return out

    def evaluate(self, doc: Document) -> list[Finding]:
        return self.evaluate_all([doc])


class RegopyEngine(_RegoBase):
    """Compiled packs evaluated by regopy (rego-cpp)."""

    name = "rego"

    def __init__(self, *args: Any, root: str = "policykit", **kwargs: Any) -> None:
        super().__init__(*args, root=root, **kwargs)
        import regopy

        refuse_quoted(self.effective_params, "the pack parameters")
        refuse_unreadable_patterns(self.packs, self.effective_params)
        for o in self.inventory or []:  # given to the constructor: as set_inventory
            refuse_quoted(o, "an inventory object")
        self._bundle: Any = None
        self._build()
        self._runner = regopy.Interpreter()

    def _build(self) -> None:
        import regopy

        builder = regopy.Interpreter()
        for path, text in regopy_modules(self.modules).items():
            builder.add_module(path, text)
        # Parameters as a module, not data: regopy's add_data keeps JSON escapes
        # undecoded ("a\\tb" stays backslash-t), unlike set_input.
        builder.add_module(
            "params.rego", params_module(self.packs, self.effective_params, self.options.root)
        )
        if self.inventory is not None:  # as a module too, for the same reason
            builder.add_module(
                "inventory.rego",
                f"package {self.options.root}\n\ninventory := {rego_term(self.inventory)}\n",
            )
        entries = [f"{self._base}/main/{e}_encoded" for e in ("batch", "violations", "decision")]
        try:
            self._bundle = builder.build(None, entries)
        except regopy.RegoError as exc:
            raise PolicykitError(f"regopy cannot compile the generated Rego: {exc}") from None

    def set_inventory(self, objects: Sequence[dict[str, Any]]) -> None:
        for o in objects:
            problem = self.inventory_problem(o)
            if problem is not None:
                raise InventoryLimitation(problem.message, hint=problem.hint)
        super().set_inventory(objects)

    def inventory_problem(self, obj: Any) -> EngineLimitation | None:
        """Why regopy cannot hold ``obj`` in its inventory (None: it can);
        ``check`` screens each object with it, to leave out only that one."""
        try:
            refuse_quoted(obj, "an inventory object")
        except EngineLimitation as exc:
            return exc
        return None

    def evaluate_each(self, docs: Iterable[Document]) -> list[list[Finding]]:
        docs = list(docs)
        for d in docs:
            refuse_quoted(d.obj, "this document", SourceLoc(d.file, d.line))
        return super().evaluate_each(docs)

    def _query(self, entry: str, input_doc: Any) -> Any:
        self._runner.set_input(regopy_input(input_doc))
        try:
            out = self._runner.query_bundle_entrypoint(
                self._bundle, f"{self._base}/main/{entry}_encoded"
            )
        except json.JSONDecodeError as exc:
            raise PolicykitError(f"regopy returned unreadable output: {exc}") from None
        # Read what Output already parsed; str(out) on an error output can segfault.
        results = out.results
        if not results:
            raise PolicykitError(f"regopy could not evaluate {entry} (an evaluation error)")
        expressions = results[0].expressions
        if not expressions:  # undefined
            return None
        return _decode(expressions[0], entry)


def regopy_input(value: Any) -> Any:
    """``regopy.Input(value)``, built with a ctypes call per value as regopy does,
    without its per-call overhead: exact type dispatch (what the loaders give:
    dict, list, str, int, float, bool, None) instead of abstract-base-class
    checks, the C functions called directly, strings passed as bytes: 1.5-2x
    faster on manifests (benchmarks/bench_cores.py); anything else goes to
    regopy's own converter, so the result is the same ``Input``."""
    import regopy
    from regopy import rego_shared as rs

    lib = rs.rego
    obj_item, obj_end, arr_end = lib.regoInputObjectItem, lib.regoInputObject, lib.regoInputArray
    put_str, put_int, put_float = lib.regoInputString, lib.regoInputInt, lib.regoInputFloat
    put_bool, put_null = lib.regoInputBoolean, lib.regoInputNull

    def add(p: Any, v: Any) -> int:
        t = type(v)
        if t is str:
            if "\x00" in v:  # a C string to regopy: cut at the NUL
                raise _lossy(f"the string {v[:40]!r}", "up to its NUL character")
            return int(put_str(p, v.encode("utf-8")))
        if t is dict:
            bad = 0
            for k, x in v.items():
                bad |= add(p, k) | add(p, x) | obj_item(p)
            return bad | int(obj_end(p, len(v)))
        if t is list:
            bad = 0
            for x in v:
                bad |= add(p, x)
            return bad | int(arr_end(p, len(v)))
        if t is bool:
            return int(put_bool(p, v))
        if t is int:
            if -_INT64 <= v < _INT64:
                return int(put_int(p, v))
            return int(put_float(p, _wide(v)))  # regoInputInt wraps it modulo 2**64
        if t is float:
            if six_decimals_lose(v):
                raise _lossy(f"the number {v!r}", f"as {v:f}")
            return int(put_float(p, v))
        if v is None:
            return int(put_null(p))
        raise _Foreign

    handle = rs.rego_new_input()
    try:
        bad = add(handle, value)
    except (_Foreign, ctypes.ArgumentError):
        rs.rego_free_input(handle)
        return regopy.Input(value)  # its own checks and errors
    except BaseException:
        rs.rego_free_input(handle)
        raise
    if bad:
        rs.rego_free_input(handle)
        return regopy.Input(value)  # raises regopy's RegoError
    out = regopy.Input.__new__(regopy.Input)
    out._impl = handle  # freed by Input.__del__
    return out


_INT64 = 2**63


def _lossy(what: str, how: str) -> EngineLimitation:
    """:class:`EngineLimitation` for a value regopy's input reads otherwise:
    ``regoInputFloat`` keeps six decimals (``1e-07`` was 0, and equal to 0),
    ``regoInputString`` stops at a NUL."""
    return EngineLimitation(
        f"regopy would read {what} {how} (a regopy defect)",
        hint="check it with --engine opa or --engine native",
    )


def _wide(v: int) -> float:
    """An integer beyond int64 as the nearest float (regopy's integers are
    int64: ``regoInputInt`` wrapped 2**64 to 0, and a call costing 2**64 USD was
    allowed); :class:`EngineLimitation` beyond the floats."""
    try:
        return float(v)
    except OverflowError:
        raise EngineLimitation(
            f"regopy cannot read the integer {str(v)[:20]}... ({len(str(v))} digits)",
            hint="check it with --engine opa or --engine native",
        ) from None


class _Foreign(Exception):
    """A value of a type the fast path leaves to regopy's converter."""


def _decode(result: Any, entry: str) -> Any:
    """Undo the base64 messages of the ``*_encoded`` entry points."""

    def one(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**f, "msg": base64.b64decode(f["msg"]).decode("utf-8")} for f in findings]

    if entry == "decision":
        reasons = [base64.b64decode(r).decode("utf-8") for r in result["reasons"]]
        return {**result, "reasons": reasons}
    if entry == "violations":
        return one(result)
    return [one(r) for r in result]


def load_opa() -> Any:
    """Real OPA: :mod:`policykit.engines.opa_host` (its ``OpaEngine``, run in a
    process of its own, and its errors), or a clear error saying how to get it."""
    from policykit.engines import opa_host

    opa_host.require()
    return opa_host


class OpaEngine(_RegoBase):
    """Compiled packs evaluated by real OPA (v1.20.2 via opa-golib-python-bindings).
    ``extra_modules`` and ``extra_data`` (merged at the root) share the engine
    with the bundle: ``verify`` queries a harness over both (:meth:`query`)."""

    name = "opa"

    def __init__(
        self,
        *args: Any,
        extra_modules: Mapping[str, str] | None = None,
        extra_data: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._extra_modules = dict(extra_modules or {})
        self._extra_data = dict(extra_data or {})
        opa = load_opa()
        self._opa = opa
        self._build()
        self._undefined = opa.OpaUndefinedError
        self._prefix = self.options.root

    def _build(self) -> None:
        opa = self._opa
        self._engine = opa.OpaEngine()
        try:
            for path, text in self.modules.items():
                self._engine.add_policy(path, text)
            self._engine.add_data(self.data)
            if self.inventory is not None:
                self._engine.add_data(under_root(self.options.root, {"inventory": self.inventory}))
            for path, text in self._extra_modules.items():
                self._engine.add_policy(path, text)
            if self._extra_data:
                self._engine.add_data(self._extra_data)
        except opa.OpaError as exc:
            raise PolicykitError(f"OPA rejects the generated Rego: {exc}") from None

    def _query(self, entry: str, input_doc: Any) -> Any:
        try:
            return self._engine.eval_document(f"{self._prefix}.main.{entry}", input_doc)
        except self._undefined:
            return None

    def query(self, path: str, input_doc: Any) -> Any:
        """``data.<path>`` with ``input_doc`` (None when undefined); OPA's
        errors are raised as they are (``opa_host.OpaError``)."""
        try:
            return self._engine.eval_document(path, input_doc)
        except self._undefined:
            return None
