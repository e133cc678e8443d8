"""Packs and rules in plain Python.

>>> from policykit.dsl import PackBuilder, select
>>> acme = PackBuilder("acme", "1.0.0")
>>> @acme.rule("ACME-001", title="Components have an owner",
...            select=select(source="backstage", kinds=["Component"]),
...            message="Component {metadata.name} has no spec.owner")
... def owner(o):
...     return o.spec.owner.absent()
>>> acme.build().rules[0].id
'ACME-001'
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from policykit.dsl.expr import Cond, Val, call_traced, not_a_condition, tracing
from policykit.errors import DefinitionError, PolicykitError, SourceLoc
from policykit.ir import nodes as ir
from policykit.ir.check import check_pack, check_rule
from policykit.ir.rule import SEVERITIES, Each, Message, Pack, ParamSpec, Rule, Selector


def select(
    *,
    source: str | None = None,
    kinds: Iterable[str] = (),
    api_versions: Iterable[str] = (),
    namespaces: Iterable[str] = (),
    exclude_namespaces: Iterable[str] = (),
    labels: Mapping[str, str] | None = None,
    entity_types: Iterable[str] = (),
) -> Selector:
    """Which objects a rule applies to (see :class:`~policykit.ir.rule.Selector`)."""
    lists = {
        "kinds": kinds,
        "api_versions": api_versions,
        "namespaces": namespaces,
        "exclude_namespaces": exclude_namespaces,
        "entity_types": entity_types,
    }
    caller = sys._getframe(1)
    loc = SourceLoc(caller.f_code.co_filename, caller.f_lineno)
    for key, value in lists.items():
        if isinstance(value, str):
            raise DefinitionError(
                f"select({key}={value!r}) takes a list, not a string",
                hint=f"write {key}=[{value!r}]",
                loc=loc,
            )
    if labels is not None and not isinstance(labels, Mapping):
        raise DefinitionError("select(labels=...) takes a mapping of label to value", loc=loc)
    return Selector(
        source=source,  # type: ignore[arg-type]
        api_versions=tuple(api_versions),
        kinds=tuple(kinds),
        namespaces=tuple(namespaces),
        exclude_namespaces=tuple(exclude_namespaces),
        labels=tuple(sorted((labels or {}).items())),
        entity_types=tuple(entity_types),
    )


@dataclass(frozen=True)
class param:  # noqa: N801 - reads as a declaration: ``param([..], schema=...)``
    """A parameter declaration for :class:`PackBuilder` (default + JSON Schema)."""

    default: Any
    schema: Mapping[str, Any]
    description: str = ""


def P(name: str) -> Val:
    """A reference to a pack parameter inside a rule body."""
    return Val(ir.Param(name))


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_SEGMENT = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[(['\"])(.*?)\3\]")


def parse_message(template: str, each_var: str | None) -> Message:
    """``"pod {metadata.name} lacks {c.name}"`` → literal text and path values.

    A placeholder is a path from the object, from the ``each`` variable, or
    ``params.<name>``; keys that are not identifiers use brackets:
    ``{metadata.labels['app.kubernetes.io/name']}``. ``{{``/``}}`` are braces.
    """
    parts: list[str | ir.Value] = []
    buf: list[str] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(template):
        buf.append(template[pos : m.start()])
        pos = m.end()
        tok = m.group(0)
        if tok in ("{{", "}}"):
            buf.append(tok[0])
            continue
        if m.group(1) is None:
            raise DefinitionError(
                f"unbalanced {tok!r} in message template", hint="write {{ or }} for a brace"
            )
        text = "".join(buf)
        if text:
            parts.append(text)
        buf = []
        parts.append(_placeholder(m.group(1).strip(), each_var))
    buf.append(template[pos:])
    if "".join(buf):
        parts.append("".join(buf))
    return Message(tuple(parts))


def _placeholder(text: str, each_var: str | None) -> ir.Value:
    segs: list[str | int] = []
    pos = 0
    while pos < len(text):
        m = _SEGMENT.match(text, pos)
        if m is None or m.end() == pos:
            raise DefinitionError(f"cannot read placeholder {{{text}}} in message template")
        if m.group(1) is not None:
            segs.append(m.group(1))
        elif m.group(2) is not None:
            segs.append(int(m.group(2)))
        else:
            segs.append(m.group(4))
        pos = m.end()
    if not segs:
        raise DefinitionError("empty {} placeholder in message template")
    head = segs[0]
    if head == "params":
        if len(segs) != 2 or not isinstance(segs[1], str):
            raise DefinitionError(f"placeholder {{{text}}}: use {{params.<name>}}")
        return ir.Param(segs[1])
    if each_var is not None and head == each_var:
        return ir.Path(each_var, tuple(segs[1:]))
    return ir.Path(ir.OBJECT_ROOT, tuple(segs))


def _user_line(exc: BaseException, filename: str, fallback: int) -> int:
    """The deepest line of the rule author's file in ``exc``'s traceback."""
    import traceback  # the error path only (start-up, issue 21)

    line = fallback
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == filename and frame.lineno:
            line = frame.lineno
    return line


class PackBuilder:
    """Collects rules written as decorated functions into an IR :class:`Pack`."""

    def __init__(
        self,
        name: str,
        version: str,
        *,
        description: str = "",
        params: Mapping[str, param] | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.description = description
        self.params = dict(params or {})
        self._rules: list[Rule] = []
        self._built: Pack | None = None

    def rule(
        self,
        rule_id: str,
        *,
        title: str,
        message: str,
        severity: str = "deny",
        description: str = "",
        remediation: str = "",
        tags: Iterable[str] = (),
        select: Selector | None = None,
        each: str | Callable[[Val], Val] | None = None,
        same_as: str = "",
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Declare a rule; the decorated function returns the *violation* condition.

        With ``each="spec.containers"`` (a path) or ``each=containers`` (a
        function of the object returning a list value) the function takes
        ``(o, item)`` and a finding is produced for every item that violates.
        ``same_as="pack/RULE-001"`` names an identical rule of another pack:
        when both packs are loaded this rule is left out (docs/packs.md).
        """
        # The caller's frame, directly: inspect.stack() builds a FrameInfo for
        # every frame of the stack (and reads source files), per rule — which
        # made loading a pack quadratic in its rule count (issue 21).
        caller = sys._getframe(1)
        decl_loc = SourceLoc(caller.f_code.co_filename, caller.f_lineno)
        if severity not in SEVERITIES:
            raise DefinitionError(
                f"unknown severity {severity!r}; use one of {', '.join(SEVERITIES)}",
                rule_id=rule_id,
                loc=decl_loc,
            )
        if isinstance(tags, str):
            raise DefinitionError(
                f"tags={tags!r} takes a list, not a string",
                hint=f"write tags=[{tags!r}]",
                rule_id=rule_id,
                loc=decl_loc,
            )

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            code = fn.__code__
            loc = SourceLoc(code.co_filename, code.co_firstlineno)
            try:
                rule = self._trace(
                    fn,
                    rule_id,
                    title,
                    message,
                    severity,
                    description,
                    remediation,
                    tuple(tags),
                    select or Selector(),
                    each,
                    loc,
                    same_as,
                )
            except PolicykitError as exc:
                # a line the error names in the author's file, else the deepest one
                # of the author's file in the traceback
                if exc.loc and exc.loc.file == loc.file and exc.loc.line:
                    line = exc.loc.line
                else:
                    line = _user_line(exc, loc.file, loc.line)
                if isinstance(exc, DefinitionError) and exc.rule_id is None:
                    exc = type(exc)(exc.message, rule_id=rule_id, hint=exc.hint, code=exc.code)
                exc.loc = SourceLoc(loc.file, line)
                raise exc.with_traceback(None) from None
            except Exception as exc:  # a Python error inside the rule body
                line = _user_line(exc, loc.file, loc.line)
                raise DefinitionError(
                    f"error while tracing the rule body: {type(exc).__name__}: {exc}",
                    rule_id=rule_id,
                    loc=SourceLoc(loc.file, line),
                ).with_traceback(None) from None
            self._rules.append(rule)
            self._built = None
            return fn

        return decorate

    def _trace(
        self,
        fn: Callable[..., Any],
        rule_id: str,
        title: str,
        message: str,
        severity: str,
        description: str,
        remediation: str,
        tags: tuple[str, ...],
        selector: Selector,
        each: str | Callable[[Val], Val] | None,
        loc: SourceLoc,
        same_as: str = "",
    ) -> Rule:
        root = Val(ir.Path(ir.OBJECT_ROOT))
        each_ir: Each | None = None
        with tracing({k: p.default for k, p in self.params.items()}):
            if each is not None:
                argnames = fn.__code__.co_varnames[: fn.__code__.co_argcount]
                if len(argnames) != 2:
                    raise DefinitionError(
                        "a rule with each=... takes two arguments: (o, item)", rule_id=rule_id
                    )
                var = argnames[1]
                if callable(each):
                    coll_val = each(root)
                    if not isinstance(coll_val, Val):
                        raise DefinitionError("each=... must return a list value", rule_id=rule_id)
                    coll = coll_val.node
                else:
                    coll = _placeholder(each, None)
                each_ir = Each(var, coll)
                result, line = call_traced(fn, root, Val(ir.Path(var)))
            else:
                result, line = call_traced(fn, root)
        at = SourceLoc(loc.file, line or loc.line)
        if result is None:
            raise DefinitionError(
                "the rule body returned None; return the violation condition",
                rule_id=rule_id,
                loc=at,
            )
        if not isinstance(result, Cond):
            err = not_a_condition(result, "returned by the rule")
            raise DefinitionError(err.message, rule_id=rule_id, hint=err.hint, loc=at)
        cond = result.node
        rule = Rule(
            id=rule_id,
            title=title,
            severity=severity,  # type: ignore[arg-type]
            condition=cond,
            message=parse_message(message, each_ir.var if each_ir else None),
            description=description or (inspect.getdoc(fn) or ""),
            remediation=remediation,
            tags=tags,
            selector=selector,
            each=each_ir,
            loc=loc,
            same_as=same_as,
        )
        check_rule(rule, {k: p.default for k, p in self.params.items()})
        return rule

    def build(self) -> Pack:
        """The IR pack (validated; cached until another rule is added)."""
        if self._built is None:
            pack = Pack(
                name=self.name,
                version=self.version,
                description=self.description,
                params=tuple(
                    ParamSpec(k, p.schema, p.default, p.description) for k, p in self.params.items()
                ),
                rules=tuple(self._rules),
            )
            check_pack(pack)
            self._built = pack
        return self._built
