"""What a Gatekeeper ConstraintTemplate runs, read as Gatekeeper reads it:
``template_source`` applies Gatekeeper's precedence (legacy ``rego`` v0 >
``code`` K8sNativeValidation > ``code`` Rego), its checks (name = lowercase
kind, ``data.inventory``/``data.lib`` only, ``lib.`` packages) and refuses
what local evaluation cannot do (external data, ``http.send``);
``regopy_patterns`` adapts third-party Rego to regopy's regex reading.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from policykit.errors import PolicyError, SourceLoc
from policykit.k8s.errors import Unsupported

PACKAGE_RE = re.compile(r"^package\s+([A-Za-z0-9_.]+)", re.MULTILINE)
GENERATOR = "policykit.io/generator"


def is_policykit_template(template: Mapping[str, Any]) -> bool:
    """A template policykit generated (``policykit build --target gatekeeper``):
    it carries the ``policykit.io/generator`` annotation (``policykit <version>``)
    and the ``app.kubernetes.io/managed-by: policykit`` label
    (policykit/targets/gatekeeper). Its Rego is run as policykit's own
    (the regopy spelling of its helpers), a third-party template's through
    :func:`regopy_patterns`."""
    meta = template.get("metadata")
    if not isinstance(meta, dict):
        return False
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    assert isinstance(annotations, dict) and isinstance(labels, dict)
    return str(annotations.get(GENERATOR, "")).startswith("policykit ") and (
        labels.get("app.kubernetes.io/managed-by") == "policykit"
    )


_UNSUPPORTED_REGO = (
    (re.compile(r"\bexternal_data\s*\("), "external data (external_data)"),
    (re.compile(r"\bhttp\.send\s*\("), "http.send"),
)
# regex built-ins: the position of their pattern argument
_PATTERN_ARG = {
    "match": 0,
    "find_n": 0,
    "find_all_string_submatch_n": 0,
    "split": 0,
    "is_valid": 0,
    "replace": 1,
}
_REGOPY_PATTERN = "_pk_regopy_pattern"
_REGOPY_HELPER = (
    f"\n# policykit: regopy reads a regex held in a value as an escaped string once more\n"
    f'{_REGOPY_PATTERN}(p) := replace(p, base64.decode("XA=="), base64.decode("XFw="))\n'
)


def regopy_patterns(text: str) -> str:
    """A third-party module as regopy must run it: each regex built-in's
    pattern that is not a string literal goes through a helper doubling its
    backslashes, because regopy's ``regex.match`` unescapes a pattern held in
    a value once more (docs/engines.md; ``\\.`` from input failed with "Invalid
    escape sequence"). Literal patterns are left as written: regopy keeps their
    escapes, so they already match."""
    from policykit.engines.rego_v0 import tokenize

    tokens = tokenize(text)
    sig = [i for i, t in enumerate(tokens) if t.kind not in ("ws", "nl", "comment")]
    edits: dict[int, str] = {}
    for n, i in enumerate(sig[:-3]):
        if not (
            tokens[i].text == "regex"
            and tokens[sig[n + 1]].text == "."
            and tokens[sig[n + 2]].text in _PATTERN_ARG
            and tokens[sig[n + 3]].text == "("
            and (n == 0 or tokens[sig[n - 1]].text != ".")
        ):
            continue
        want = _PATTERN_ARG[tokens[sig[n + 2]].text]
        depth, arg, start = 0, 0, None
        for m in range(n + 4, len(sig)):
            t = tokens[sig[m]]
            if arg == want and start is None:
                start = m
            if t.text in ("(", "[", "{"):
                depth += 1
            elif t.text in (")", "]", "}"):
                if depth == 0:
                    end = m
                    break
                depth -= 1
            elif t.text == "," and depth == 0:
                if arg == want:
                    end = m
                    break
                arg += 1
        else:
            continue
        if start is None or start >= end:
            continue
        if end - start == 1 and tokens[sig[start]].kind in ("str", "raw"):
            continue  # a literal: regopy already reads it right
        edits[sig[start]] = f"{_REGOPY_PATTERN}(" + edits.get(sig[start], tokens[sig[start]].text)
        last = sig[end - 1]
        edits[last] = edits.get(last, tokens[last].text) + ")"
    if not edits:
        return text
    return "".join(edits.get(i, t.text) for i, t in enumerate(tokens)) + _REGOPY_HELPER


_DATA_REF = re.compile(r"\bdata\.([A-Za-z_][A-Za-z0-9_]*)")


def _rego_problems(name: str, text: str, where: SourceLoc | None) -> None:
    """Gatekeeper's own checks on template Rego, and what we cannot run."""
    code = _strip_strings(text)
    for pattern, what in _UNSUPPORTED_REGO:
        if pattern.search(code):
            raise Unsupported(f"{name} uses {what}", loc=where)
    for ref in _DATA_REF.findall(code):
        if ref not in ("inventory", "lib"):
            raise PolicyError(
                f"{name} references data.{ref}; Gatekeeper rejects the template "
                "(only data.inventory and data.lib are allowed)",
                loc=where,
                hint="read cluster state from data.inventory, helpers from libs",
            )


def _strip_strings(text: str) -> str:
    """Rego text with strings, raw strings and comments blanked out."""
    from policykit.engines.rego_v0 import tokenize

    return "".join(" " if t.kind in ("str", "raw", "comment") else t.text for t in tokenize(text))


@dataclass(frozen=True, slots=True)
class TemplateSource:
    """What a ConstraintTemplate runs, after Gatekeeper's precedence: the
    legacy ``targets[].rego`` (v0) wins over ``code``; in ``code``,
    ``K8sNativeValidation`` wins over ``Rego`` (whose version defaults to v0)."""

    kind: str
    engine: Literal["Rego", "K8sNativeValidation"]
    modules: dict[str, str]
    cel: Mapping[str, Any]

    @property
    def package(self) -> str:
        """The package of a Rego template's own module (``template_source``
        refuses one without)."""
        found = PACKAGE_RE.search(self.modules["template.rego"])
        assert found is not None
        return found.group(1)


def template_source(template: Mapping[str, Any], where: SourceLoc | None = None) -> TemplateSource:
    spec = template.get("spec") if isinstance(template.get("spec"), dict) else None
    kind = ((((spec or {}).get("crd") or {}).get("spec") or {}).get("names") or {}).get("kind")
    name = str((template.get("metadata") or {}).get("name", ""))
    if not isinstance(kind, str) or not kind:
        raise PolicyError("the ConstraintTemplate has no spec.crd.spec.names.kind", loc=where)
    if name != kind.lower():
        raise PolicyError(
            f"ConstraintTemplate name {name!r} must be the lowercase of its kind {kind!r}",
            loc=where,
            hint=f"name it {kind.lower()!r}",
        )
    targets = (spec or {}).get("targets") or []
    if len(targets) != 1:
        raise PolicyError("a ConstraintTemplate needs exactly one target", loc=where)
    target = targets[0]
    if target.get("rego"):
        rego, libs, version = target["rego"], target.get("libs") or [], "v0"
    else:
        code = target.get("code") or []
        cel = [c for c in code if c.get("engine") == "K8sNativeValidation"]
        if cel:
            return TemplateSource(kind, "K8sNativeValidation", {}, cel[0].get("source") or {})
        regos = [c for c in code if c.get("engine") == "Rego"]
        if not regos:
            engines = sorted({str(c.get("engine")) for c in code}) or ["none"]
            raise Unsupported(
                f"template {name} has no engine policykit runs (engines: {', '.join(engines)})",
                loc=where,
            )
        source = regos[0].get("source") or {}
        rego, libs = source.get("rego", ""), source.get("libs") or []
        version = source.get("version", "v0")
    modules: dict[str, str] = {}
    for i, text in enumerate([rego, *libs]):
        label = name if i == 0 else f"{name} lib {i}"
        from policykit.engines.rego_v0 import RegoUpgradeError

        try:
            _rego_problems(label, str(text), where)
        except RegoUpgradeError as exc:
            line = f" line {exc.loc.line}" if exc.loc else ""
            raise RegoUpgradeError(
                f"{label}, Rego{line}: {exc.message}", loc=where, hint=exc.hint
            ) from None
        found = PACKAGE_RE.search(str(text))
        if found is None:
            raise PolicyError(f"{label}: the Rego has no package", loc=where)
        if i and (not found.group(1).startswith("lib.")):
            raise PolicyError(
                f"{label}: a lib's package must start with 'lib.' (got {found.group(1)!r})",
                loc=where,
            )
        if version != "v1":
            from policykit.engines.rego_v0 import upgrade

            try:
                text = upgrade(str(text), label)
            except RegoUpgradeError as exc:
                line = f" line {exc.loc.line}" if exc.loc else ""
                raise RegoUpgradeError(
                    f"{label}, Rego{line}: {exc.message}", loc=where, hint=exc.hint
                ) from None
        modules["template.rego" if i == 0 else f"lib{i}.rego"] = str(text)
    return TemplateSource(kind, "Rego", modules, {})
