"""The DSL builds the intended IR and reports mistakes at definition time
with the rule id and the author's source line."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import jsonschema
import pytest

from policykit.dsl import P, PackBuilder, param, parse_message, select
from policykit.dsl.k8s import containers
from policykit.engines.native import NativeEngine
from policykit.errors import DefinitionError, IRFormatError, RegexDialectError
from policykit.ir import nodes as ir
from policykit.ir import serialize


def _line_of(marker: str) -> int:
    src, _start = inspect.getsourcelines(inspect.getmodule(_line_of))  # type: ignore[arg-type]
    for i, text in enumerate(src):
        if marker in text and "_line_of" not in text:
            return i + 1
    raise AssertionError(marker)


def test_operators_build_ir() -> None:
    pk = PackBuilder("t", "1.0.0", params={"n": param(2, {"type": "integer"})})

    @pk.rule("T-001", title="t", message="m")
    def r(o):  # type: ignore[no-untyped-def]
        return (o.spec.replicas < P("n")) & ~o.metadata.labels["team"].exists() | (
            o.spec.paused.is_true()
        )

    cond = pk.build().rules[0].condition
    assert isinstance(cond, ir.Or)
    a, b = cond.items
    assert isinstance(a, ir.And)
    assert a.items[0] == ir.Compare("<", ir.Path("object", ("spec", "replicas")), ir.Param("n"))
    assert a.items[1] == ir.Not(ir.Exists(ir.Path("object", ("metadata", "labels", "team"))))
    assert b == ir.Compare("==", ir.Path("object", ("spec", "paused")), ir.Literal(True))


def test_quantifier_binds_a_variable() -> None:
    pk = PackBuilder("t", "1.0.0")

    @pk.rule("T-001", title="t", message="m")
    def r(o):  # type: ignore[no-untyped-def]
        return o.spec.containers.any(lambda c: c.image.endswith(":latest"))

    cond = pk.build().rules[0].condition
    assert isinstance(cond, ir.Quantifier)
    assert cond.kind == "any"
    assert cond.body == ir.StrOp("endswith", ir.Path(cond.var, ("image",)), ir.Literal(":latest"))


def test_each_rule_and_message_template() -> None:
    pk = PackBuilder("t", "1.0.0")

    @pk.rule(
        "T-001",
        title="t",
        each=containers,
        message="{kind} {metadata.labels['app.kubernetes.io/name']} {c.name} {{x}}",
    )
    def r(o, c):  # type: ignore[no-untyped-def]
        return c.image.absent()

    rule = pk.build().rules[0]
    assert rule.each is not None and rule.each.var == "c"
    parts = rule.message.parts
    assert parts[0] == ir.Path("object", ("kind",))
    assert parts[2] == ir.Path("object", ("metadata", "labels", "app.kubernetes.io/name"))
    assert parts[4] == ir.Path("c", ("name",))
    assert parts[5] == " {x}"


def test_unknown_severity_names_rule_and_line() -> None:
    pk = PackBuilder("t", "1.0.0")
    with pytest.raises(DefinitionError) as exc:

        @pk.rule("T-001", title="t", message="m", severity="critical")  # MARK-SEV
        def r(o):  # type: ignore[no-untyped-def]
            return o.a.exists()

    err = exc.value
    assert err.rule_id == "T-001"
    assert "critical" in err.message
    assert err.loc is not None and err.loc.line == _line_of("MARK-SEV")
    assert err.loc.file == __file__


def test_bad_regex_points_at_the_line_in_the_body() -> None:
    pk = PackBuilder("t", "1.0.0")
    with pytest.raises(RegexDialectError) as exc:

        @pk.rule("T-002", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            ok = o.a.exists()
            return ok & o.metadata.name.matches("(?i)^x")  # MARK-RX

    err = exc.value
    assert err.rule_id == "T-002"
    assert err.loc is not None and err.loc.line == _line_of("MARK-RX")
    assert "PK101" in err.one_line() and "T-002" in err.one_line()


def test_comparing_a_path_to_a_dict_is_reported() -> None:
    pk = PackBuilder("t", "1.0.0")
    with pytest.raises(DefinitionError) as exc:

        @pk.rule("T-003", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.metadata.labels == {"team": "x"}  # MARK-DICT

    assert "dict" in exc.value.message
    assert exc.value.loc is not None and exc.value.loc.line == _line_of("MARK-DICT")


def test_python_boolean_operators_are_refused() -> None:
    pk = PackBuilder("t", "1.0.0")
    with pytest.raises(DefinitionError) as exc:

        @pk.rule("T-004", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.a.exists() and o.b.exists()  # MARK-AND

    assert "& | ~" in exc.value.hint
    assert exc.value.loc is not None and exc.value.loc.line == _line_of("MARK-AND")


def test_in_operator_is_refused_with_a_hint() -> None:
    pk = PackBuilder("t", "1.0.0")
    with pytest.raises(DefinitionError) as exc:

        @pk.rule("T-005", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return "x" in o.metadata.tags

    assert "includes" in exc.value.hint


def test_unknown_param_bad_id_and_python_errors() -> None:
    pk = PackBuilder("t", "1.0.0")
    with pytest.raises(DefinitionError, match="unknown parameter 'nope'"):

        @pk.rule("T-006", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.a == P("nope")

    with pytest.raises(DefinitionError, match="must look like CAT-001"):

        @pk.rule("bad id", title="t", message="m")
        def r2(o):  # type: ignore[no-untyped-def]
            return o.a.exists()

    with pytest.raises(DefinitionError, match="ZeroDivisionError") as exc:

        @pk.rule("T-007", title="t", message="m")
        def r3(o):  # type: ignore[no-untyped-def]
            return o.a == 1 / 0  # MARK-ZERO

    assert exc.value.loc is not None and exc.value.loc.line == _line_of("MARK-ZERO")


def test_message_placeholders_and_errors() -> None:
    m = parse_message("a {metadata.name} b {params.x} {spec.list[2]}", None)
    assert m.parts == (
        "a ",
        ir.Path("object", ("metadata", "name")),
        " b ",
        ir.Param("x"),
        " ",
        ir.Path("object", ("spec", "list", 2)),
    )
    with pytest.raises(DefinitionError, match="unbalanced"):
        parse_message("oops } here", None)
    with pytest.raises(DefinitionError):
        parse_message("{}", None)


def test_params_are_validated_against_their_schema() -> None:
    pk = PackBuilder("t", "1.0.0", params={"n": param("two", {"type": "integer"})})

    @pk.rule("T-001", title="t", message="m")
    def r(o):  # type: ignore[no-untyped-def]
        return o.a == P("n")

    with pytest.raises(Exception, match="is not of type 'integer'"):
        pk.build()


def test_selector_and_duplicate_ids() -> None:
    pk = PackBuilder("t", "1.0.0")
    with pytest.raises(DefinitionError, match="takes a list"):
        select(kinds="Deployment")

    @pk.rule("T-001", title="t", message="m")
    def r(o):  # type: ignore[no-untyped-def]
        return o.a.exists()

    @pk.rule("T-001", title="t", message="m")
    def r2(o):  # type: ignore[no-untyped-def]
        return o.b.exists()

    with pytest.raises(DefinitionError, match="duplicate rule id"):
        pk.build()


@pytest.mark.parametrize("name", ["main", "params", "inventory", "waivers"])
def test_pack_names_the_bundle_uses_are_refused(name: str) -> None:
    # a pack "main" compiled to package <root>.main, beside the bundle's own
    # main module: OPA refused the bundle (recursive rules), regopy returned garbage
    pk = PackBuilder(name, "1.0.0")

    @pk.rule("T-001", title="t", message="m")
    def r(o):  # type: ignore[no-untyped-def]
        return o.spec.x.exists()

    with pytest.raises(DefinitionError, match="reserved"):
        pk.build()
    ok = PackBuilder("ok", "1.0.0")
    ok.rule("T-001", title="t", message="m")(lambda o: o.spec.x.exists())
    doc = json.loads(serialize.dumps([ok.build()]))
    schema = json.loads((Path(__file__).parents[1] / "schemas/ir.schema.json").read_text())
    jsonschema.validate(doc, schema)
    doc["packs"][0]["name"] = name
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)
    with pytest.raises(IRFormatError, match=r"at \$\.packs\[0\]\.name"):
        NativeEngine(serialize.loads(json.dumps(doc)), {})
