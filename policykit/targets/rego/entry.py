"""The entry module ``<root>.main``: findings of every pack (less waived ones),
per object and in batch, base64 variants for regopy, and the agents' runtime
``decision`` for one tool call (policykit/toolcall.py, the same checks and
messages)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from policykit import __version__
from policykit import toolcall as tc
from policykit.ir.rule import Pack
from policykit.targets.rego import printer as pr
from policykit.targets.rego.core import LIB_VALUES, OBJ, RegoOptions

# The name of each tool-call check, from its message's name (M_API: _call_ok_api).
_CHECK_NAMES = {getattr(tc, a): a[2:].lower() for a in dir(tc) if a.startswith("M_")}

# What the violations and batch entry points answer for an input that is not an object.
NOT_AN_OBJECT = {
    "id": "POLICYKIT-INPUT",
    "pack": "policykit",
    "severity": "deny",
    "msg": "policykit: input is not an object",
}


def main_module(packs: Sequence[Pack], options: RegoOptions) -> str:
    """``<root>.main``: findings of every pack, per object and in batch."""
    mod = pr.Module(f"{options.root}.main")
    mod.header = pr.metadata_block(
        {"title": "policykit entry points", "custom": {"generator": f"policykit {__version__}"}}
    )
    refs = [f"data.{options.package(p.name)}.findings({OBJ})" for p in packs]
    if not refs:
        joined = "[]"
    elif len(refs) == 1:
        joined = refs[0]
    else:
        joined = f"[f | some fs in [{', '.join(refs)}]; some f in fs]"
    mod.imports.add(options.lib(LIB_VALUES))
    mod.add(["# Findings of every pack about one object.", f"all_findings({OBJ}) := {joined}"])
    mod.add(
        [
            "# Less those a waiver in force accepts (the bundle's waivers data).",
            *pr.comprehension(
                f"findings({OBJ}) := [",
                "f",
                [f"some f in all_findings({OBJ})", f"not waived(f, {OBJ})"],
                "]",
            ),
        ]
    )
    waivers_ref = f"data.{options.root}.waivers.items"  # undefined without waivers: none apply
    mod.add(
        [
            "# A waiver: rule id, expiry (ns, end of its last day) and fields that must",
            "# match (exact, or a prefix ending in *); see policykit/waivers.py.",
            "waived(f, obj) if {",
            f"\tsome w in {waivers_ref}",
            "\tw.rule == f.id",
            "\ttime.now_ns() <= w.expires_ns",
            "\tnot _mismatch(w, f, obj)",
            "}",
        ]
    )
    mod.add(
        [
            "_mismatch(w, f, obj) if {",
            "\tsome key",
            "\twant := w.match[key]",
            "\tnot values.glob_any([want], _field(key, f, obj))",
            "}",
        ]
    )
    mod.add(['_field("pack", f, _) := f.pack'])
    for key, ref in (
        ("kind", f"{OBJ}.kind"),
        ("apiVersion", f"{OBJ}.apiVersion"),
        ("name", f"{OBJ}.metadata.name"),
    ):
        mod.add(
            [
                f'_field("{key}", _, {OBJ}) := v if {{',
                f"\tv := {ref}",
                "\tis_string(v)",
                '} else := ""',
            ]
        )
    mod.add(
        [
            f'_field("namespace", _, {OBJ}) := v if {{',
            f"\tv := values.namespace({OBJ})",
            '} else := ""',
        ]
    )
    mod.add(
        [
            "# Findings about one input value; what is not an object (not even",
            "# there) is denied, never passed as clean: fails closed.",
            f"reviewed({OBJ}) := findings({OBJ}) if {{",
            f"\tis_object({OBJ})",
            f"}} else := [{pr.term(NOT_AN_OBJECT)}]",
        ]
    )
    mod.add(
        [
            "# One object as input.",
            f"default violations := [{pr.term(NOT_AN_OBJECT)}]",
            "",
            "violations := reviewed(input)",
        ]
    )
    mod.add(
        [
            "# input.objects: one result list per object.",
            f"batch := [reviewed({OBJ}) | some {OBJ} in input.objects]",
        ]
    )
    mod.add(
        [
            "# The same with base64 messages, for engines whose output encoder does not",
            "# escape strings (regopy prints quotes and control characters raw).",
            *pr.comprehension(
                f"encoded({OBJ}) := [",
                'object.union(f, {"msg": base64.encode(f.msg)})',
                [f"some f in reviewed({OBJ})"],
                "]",
            ),
        ]
    )
    mod.add(
        [
            f"default violations_encoded := [{pr.term(_encoded(NOT_AN_OBJECT))}]",
            "",
            "violations_encoded := encoded(input)",
        ]
    )
    block: list[str] = []
    for line in [*decision_rules(packs), ""]:
        if line:
            block.append(line)
        elif block:
            mod.add(block)
            block = []
    mod.add(
        [
            "# The same with base64 reasons (regopy's output encoder, as above).",
            'decision_encoded := object.union(decision, {"reasons": '
            "[base64.encode(r) | some r in decision.reasons]})",
        ]
    )
    mod.add([f"batch_encoded := [encoded({OBJ}) | some {OBJ} in input.objects]"])
    return mod.text()


def _encoded(finding: Mapping[str, Any]) -> dict[str, Any]:
    return {**finding, "msg": base64.b64encode(str(finding["msg"]).encode()).decode()}


def decision_rules(packs: Sequence[Pack]) -> list[str]:
    """``decision``: the runtime decision for one agent tool call, failing closed
    exactly as :mod:`policykit.toolcall` (the same checks, the same messages)."""
    s = pr.string
    refused = '{"allow": false, "deny": true, "needs_approval": false, "reasons": _call_refusal}'
    out = [
        "# The runtime decision for one call, input {agent, tool, action, args,",
        "# spend_so_far} read as a ToolCall object (its apiVersion and kind win over",
        "# the input's): deny findings deny it, warn findings need human approval.",
        "# It fails closed: an input it cannot classify is denied with the reasons",
        "# why, before any rule runs; so is anything undefined (policykit/toolcall.py).",
        f'default decision := {{"allow": false, "deny": true, "needs_approval": false, '
        f'"reasons": [{s(tc.UNDEFINED)}]}}',
        "",
        f"decision := {refused} if {{",
        "\tcount(_call_refusal) > 0",
        "} else := {",
        '\t"allow": count(_call_findings) == count(_call_notes),',
        '\t"deny": count(_call_denied) > 0,',
        '\t"needs_approval": count(_call_approval) > 0,',
        '\t"reasons": [concat(": ", [f.id, f.msg]) | some f in _call_findings],',
        "}",
        "",
    ]
    out += [
        "# A rule, not is_object(input) under not: that is undefined without input.",
        "_call_input_object if is_object(input)",
        "",
        "_call_in := input if {",
        "\t_call_input_object",
        "} else := {}",
        "",
        "_call := object.union(_call_in, "
        f'{{"apiVersion": {s(tc.API_VERSION)}, "kind": {s(tc.KIND)}}})',
        "",
    ]
    if not tc.decides_calls(packs):
        out += [f"_call_refusal := [{s(tc.NO_RULES)}]"]
    else:
        out += [
            f'_call_refusal := [concat("", [{s(tc.PREFIX)}, m]) | some m in _call_problems]',
            "",
            f"_call_problems := [{s(tc.M_OBJECT)}] if {{",
            "\tnot _call_input_object",
            "} else := sort(_call_bad)",
        ]

        checks: list[str] = []

        def bad(msg: str, binds: Sequence[str], var: str, *ok: str) -> None:
            """``msg`` when the ``ok`` body fails for ``var``: the lookups sit in a
            function body, so an undefined path fails ``ok`` (a ``not`` over an
            undefined argument would be undefined itself)."""
            fn = f"_call_ok_{_CHECK_NAMES[msg]}"
            if any(line.startswith(f"{fn}(") for line in checks):  # two checks, one message
                raise AssertionError(f"toolcall message {msg!r} names two checks")
            checks.extend(["", f"{fn}({var}) if {{", *(f"\t{b}" for b in ok), "}"])
            body = [*binds, f"not {fn}({var})"]
            out.extend(["", f"_call_bad contains {s(msg)} if {{", *(f"\t{b}" for b in body), "}"])

        c, agent, spec = (
            ["c := _call_in"],
            ["a := _call_in.agent", "is_object(a)"],
            "_call_in.agent.spec",
        )
        bad(tc.M_API, ["v := _call_in.apiVersion"], "v", f"v == {s(tc.API_VERSION)}")
        bad(tc.M_KIND, ["v := _call_in.kind"], "v", f"v == {s(tc.KIND)}")
        bad(tc.M_META, c, "c", 'not "metadata" in object.keys(c)')
        bad(tc.M_AGENT, c, "c", "is_object(c.agent)")
        bad(
            tc.M_AGENT_TYPE,
            agent,
            "a",
            "is_string(a.apiVersion)",
            f"startswith(a.apiVersion, {s(tc.AGENT_API_PREFIX)})",
            'a.kind == "Agent"',
        )
        bad(tc.M_AGENT_NAME, agent, "a", "_call_nonempty(a.metadata.name)")
        bad(tc.M_SPEC, agent, "a", "is_object(a.spec)")
        for msg, check in (
            (tc.M_TIER, "is_string(sp.tier)"),
            (tc.M_SERVERS, "_call_servers(sp.mcpServers)"),
            (tc.M_BUDGET, "_call_nonneg(sp.budget.monthlyUsd)"),
            (tc.M_AUDIT, "is_boolean(sp.audit.enabled)"),
        ):
            bad(msg, [f"sp := {spec}", "is_object(sp)"], "sp", check)
        for msg, ref, check in (
            (tc.M_EGRESS, f"{spec}.egress", "_call_strings(v)"),
            (tc.M_APPROVAL, f"{spec}.approval", "is_object(v)"),
            (tc.M_REQUIRED_FOR, f"{spec}.approval.requiredFor", "_call_strings(v)"),
            (tc.M_SPEND_ABOVE, f"{spec}.approval.spendAboveUsd", "_call_nonneg(v)"),
            (tc.M_ARGS, "_call_in.args", "is_object(v)"),
            (tc.M_COST, "_call_in.args.cost_usd", "_call_nonneg(v)"),
            (tc.M_DOMAIN, "_call_in.args.domain", "is_string(v)"),
            (tc.M_SPEND, "_call_in.spend_so_far", "_call_nonneg(v)"),
        ):
            bad(msg, [f"v := {ref}"], "v", check)
        bad(
            tc.M_TOOL,
            c,
            "c",
            "is_object(c.tool)",
            "_call_nonempty(c.tool.server)",
            "_call_nonempty(c.tool.name)",
        )
        bad(tc.M_ACTION, c, "c", "is_string(c.action)")
        out += checks
        out += [
            "",
            "_call_nonempty(x) if {",
            "\tis_string(x)",
            '\tx != ""',
            "}",
            "",
            "_call_nonneg(x) if {",
            "\tis_number(x)",
            "\tx >= 0",
            "}",
            "",
            "_call_strings(xs) if {",
            "\tis_array(xs)",
            "\tevery x in xs {",
            "\t\tis_string(x)",
            "\t}",
            "}",
            "",
            "_call_servers(servers) if {",
            "\tis_array(servers)",
            "\tevery srv in servers {",
            "\t\tis_object(srv)",
            "\t\tis_string(srv.name)",
            "\t\tis_array(srv.tools)",
            "\t\tevery t in srv.tools {",
            "\t\t\tis_object(t)",
            "\t\t\tis_string(t.name)",
            "\t\t}",
            "\t}",
            "}",
        ]
    out += ["", "_call_findings := findings(_call)"]
    for name, severity in (("denied", "deny"), ("approval", "warn"), ("notes", "info")):
        out.append(f'_call_{name} := [f | some f in _call_findings; f.severity == "{severity}"]')
    return out
