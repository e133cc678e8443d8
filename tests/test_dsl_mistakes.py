"""DSL mistakes that used to fail silently (a rule that never or always fires)
are PK100 errors when the rule is defined, naming the rule id and the line of
the rule author's file that holds the mistake (issue 20)."""

from __future__ import annotations

import inspect
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from policykit.cli.main import cli
from policykit.dsl import P, PackBuilder, param, select
from policykit.engines.native import NativeEngine
from policykit.errors import DefinitionError, PackLoadError
from policykit.ir import serialize
from policykit.packs import load_packs
from tests.conftest import ROOT


def _line_of(marker: str) -> int:
    src, _start = inspect.getsourcelines(inspect.getmodule(_line_of))  # type: ignore[arg-type]
    mark = re.compile(r"#.*" + re.escape(marker) + r"(?![\w-])")
    lines = [i + 1 for i, text in enumerate(src) if mark.search(text) and f'"{marker}"' not in text]
    assert len(lines) == 1, (marker, lines)
    return lines[0]


def _pack() -> PackBuilder:
    return PackBuilder(
        "t",
        "1.0.0",
        params={
            "allowed_tools": param(["search"], {"type": "array", "items": {"type": "string"}}),
            "team": param("payments", {"type": "string"}),
        },
    )


def _refused(rule_id: str, marker: str, define: Callable[[PackBuilder], Any]) -> DefinitionError:
    """Defining the rule raises PK100 for ``rule_id`` at the line marked ``marker``."""
    with pytest.raises(DefinitionError) as exc:
        define(_pack())
    err = exc.value
    assert err.code == "PK100", err.one_line()
    assert err.rule_id == rule_id
    assert err.loc is not None and err.loc.file == __file__
    assert err.loc.line == _line_of(marker), err.one_line()
    line = err.one_line()
    assert line.startswith(f"{__file__}:{err.loc.line}: PK100 rule {rule_id}: "), line
    return err


# 1. a string where a list or P("...") is meant ----------------------------------


def test_is_in_a_string_naming_a_parameter_suggests_p() -> None:
    def define(pk: PackBuilder) -> None:
        @pk.rule("AG-001", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return ~o.tool.name.is_in("allowed_tools")  # MARK-ISIN-P

    err = _refused("AG-001", "MARK-ISIN-P", define)
    assert "takes a list, not a string" in err.message
    assert err.hint == 'did you mean P("allowed_tools")?'


def test_is_in_and_not_in_a_plain_string_suggest_a_list() -> None:
    def define(pk: PackBuilder) -> None:
        @pk.rule("AG-002", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.tool.name.is_in("search")  # MARK-ISIN-STR

    err = _refused("AG-002", "MARK-ISIN-STR", define)
    assert "is_in(['search'])" in err.hint and "== 'search'" in err.hint

    def define_not_in(pk: PackBuilder) -> None:
        @pk.rule("AG-003", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.tool.name.not_in("allowed_tools")  # MARK-NOTIN

    err = _refused("AG-003", "MARK-NOTIN", define_not_in)
    assert "always hold" in err.message
    assert err.hint == 'did you mean P("allowed_tools")?'


def test_is_in_a_string_parameter_number_set_or_dict() -> None:
    def define(pk: PackBuilder) -> None:
        @pk.rule("AG-004", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.spec.owner.is_in(P("team"))  # MARK-ISIN-STRPARAM

    err = _refused("AG-004", "MARK-ISIN-STRPARAM", define)
    assert "not a list" in err.message and '== P("team")' in err.hint

    def define_set(pk: PackBuilder) -> None:
        @pk.rule("AG-005", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.kind.is_in({"Component", "API"})  # MARK-ISIN-SET

    assert "is_in([...])" in _refused("AG-005", "MARK-ISIN-SET", define_set).hint

    def define_number(pk: PackBuilder) -> None:
        @pk.rule("AG-006", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.spec.replicas.is_in(3)  # MARK-ISIN-NUM

    assert "== 3" in _refused("AG-006", "MARK-ISIN-NUM", define_number).hint

    def define_dict(pk: PackBuilder) -> None:
        @pk.rule("AG-007", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.kind.is_in({"Component": 1})  # MARK-ISIN-DICT

    assert "not a dict" in _refused("AG-007", "MARK-ISIN-DICT", define_dict).message


def test_includes_and_string_tests_take_one_item() -> None:
    def define(pk: PackBuilder) -> None:
        @pk.rule("AG-008", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.spec.tags.includes(["a", "b"])  # MARK-INCL-LIST

    assert ".any(lambda v:" in _refused("AG-008", "MARK-INCL-LIST", define).hint

    def define_param(pk: PackBuilder) -> None:
        @pk.rule("AG-009", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return ~o.agent.tools.includes(P("allowed_tools"))  # MARK-INCL-PARAM

    err = _refused("AG-009", "MARK-INCL-PARAM", define_param)
    assert 'P("allowed_tools").all(lambda v: o.agent.tools.includes(v))' in err.hint

    def define_prefixes(pk: PackBuilder) -> None:
        @pk.rule("AG-010", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.spec.image.startswith(("docker.io/", "quay.io/"))  # MARK-PREFIXES

    err = _refused("AG-010", "MARK-PREFIXES", define_prefixes)
    assert "any_of(*(o.spec.image.startswith(s)" in err.hint

    def define_number(pk: PackBuilder) -> None:
        @pk.rule("AG-011", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.spec.image.endswith(1)  # MARK-ENDS-NUM

    assert "never hold" in _refused("AG-011", "MARK-ENDS-NUM", define_number).message


# 2. comparing with None -----------------------------------------------------------


def test_equal_to_none_points_to_absent() -> None:
    def define(pk: PackBuilder) -> None:
        @pk.rule("CAT-010", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.spec.owner == None  # noqa: E711  MARK-EQ-NONE

    err = _refused("CAT-010", "MARK-EQ-NONE", define)
    assert "never for a missing field" in err.message
    assert "o.spec.owner.absent()" in err.hint and "is_type('null')" in err.hint


def test_not_equal_to_none_points_to_exists_and_ordering_with_none_is_refused() -> None:
    def define(pk: PackBuilder) -> None:
        @pk.rule("CAT-011", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.spec.owner.exists() & (o.spec.system != None)  # noqa: E711  MARK-NE-NONE

    assert "o.spec.system.exists()" in _refused("CAT-011", "MARK-NE-NONE", define).message

    def define_lt(pk: PackBuilder) -> None:
        @pk.rule("CAT-012", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.spec.replicas < None  # MARK-LT-NONE

    assert "never holds" in _refused("CAT-012", "MARK-LT-NONE", define_lt).message


def test_is_none_is_a_python_test() -> None:
    def define(pk: PackBuilder) -> None:
        @pk.rule("CAT-013", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.spec.owner is None  # MARK-IS-NONE

    err = _refused("CAT-013", "MARK-IS-NONE", define)
    assert "Python value False is not a condition" in err.message
    assert "x.absent()" in err.hint

    def define_and(pk: PackBuilder) -> None:
        @pk.rule("CAT-014", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.kind.exists() & (o.spec.owner is not None)  # MARK-AND-ISNOTNONE

    assert "x.exists()" in _refused("CAT-014", "MARK-AND-ISNOTNONE", define_and).hint


# 3. a value where a condition is meant ----------------------------------------------


def test_returning_a_value_is_refused_at_the_return_line() -> None:
    def define(pk: PackBuilder) -> None:
        @pk.rule("AG-020", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            name = o.tool.name
            if_unused = name.exists()
            del if_unused
            return o.tool.name  # MARK-RET-VAL

    err = _refused("AG-020", "MARK-RET-VAL", define)
    assert "o.tool.name is a value, not a condition returned by the rule" in err.message
    assert ".exists()" in err.hint and "o.tool.name == ..." in err.hint and ".is_true()" in err.hint


def test_a_value_in_and_or_not_or_a_quantifier_is_refused() -> None:
    def define_and(pk: PackBuilder) -> None:
        @pk.rule("K8S-020", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.metadata.name.exists() & o.spec.hostNetwork  # MARK-AND-VAL

    assert "o.spec.hostNetwork.is_true()" in _refused("K8S-020", "MARK-AND-VAL", define_and).hint

    def define_not(pk: PackBuilder) -> None:
        @pk.rule("K8S-021", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return ~o.spec.paused  # MARK-NOT-VAL

    assert "o.spec.paused is a value" in _refused("K8S-021", "MARK-NOT-VAL", define_not).message

    def define_any(pk: PackBuilder) -> None:
        @pk.rule("K8S-022", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.spec.containers.any(
                lambda c: c.securityContext.privileged  # MARK-ANY-VAL
            )

    err = _refused("K8S-022", "MARK-ANY-VAL", define_any)
    assert "c.securityContext.privileged is a value, not a condition in .any()" in err.message


def test_a_method_without_parentheses_is_refused() -> None:
    def define(pk: PackBuilder) -> None:
        @pk.rule("CAT-015", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.spec.owner.absent  # MARK-NO-PARENS

    err = _refused("CAT-015", "MARK-NO-PARENS", define)
    assert "o.spec.owner.absent is a method, not a condition" in err.message
    assert err.hint == "call it: o.spec.owner.absent(...)"

    def define_and(pk: PackBuilder) -> None:
        @pk.rule("CAT-023", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.kind.exists() & o.spec.owner.exists  # MARK-AND-METHOD

    assert (
        "call it: o.spec.owner.exists(...)"
        in _refused("CAT-023", "MARK-AND-METHOD", define_and).hint
    )


def test_a_python_constant_or_a_tuple_is_not_a_condition() -> None:
    def define(pk: PackBuilder) -> None:
        @pk.rule("CAT-016", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return True  # MARK-RET-TRUE

    assert "all_of()" in _refused("CAT-016", "MARK-RET-TRUE", define).hint

    def define_tuple(pk: PackBuilder) -> None:
        @pk.rule("CAT-017", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.a.exists(), o.b.exists()  # MARK-RET-TUPLE

    assert "trailing comma" in _refused("CAT-017", "MARK-RET-TUPLE", define_tuple).message


def test_a_boolean_field_is_a_condition_with_is_true() -> None:
    pk = _pack()

    @pk.rule("K8S-023", title="t", message="m")
    def r(o):  # type: ignore[no-untyped-def]
        return o.spec.hostNetwork.is_true() & o.spec.owner.is_in(P("allowed_tools"))

    assert pk.build().rules[0].id == "K8S-023"


# 4. calling a field -------------------------------------------------------------------


def test_a_misspelt_method_names_the_nearest_one() -> None:
    def define(pk: PackBuilder) -> None:
        @pk.rule("CAT-018", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.spec.owner.absnt()  # MARK-ABSNT

    err = _refused("CAT-018", "MARK-ABSNT", define)
    assert err.message == "rule CAT-018: `absnt` is read as a field name; did you mean `.absent()`?"
    assert "not callable" not in err.one_line()

    def define_camel(pk: PackBuilder) -> None:
        @pk.rule("CAT-019", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.spec.image.startsWith("x")  # MARK-CAMEL

    err = _refused("CAT-019", "MARK-CAMEL", define_camel)
    assert "did you mean `.startswith()`?" in err.message

    def define_param(pk: PackBuilder) -> None:
        @pk.rule("CAT-020", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.tool.name.is_in(P("allowed_tools").filtr(lambda t: t != "x"))  # MARK-FILTR

    assert "did you mean `.filter()`?" in _refused("CAT-020", "MARK-FILTR", define_param).message


def test_a_python_method_names_the_dsl_way() -> None:
    def define(pk: PackBuilder) -> None:
        @pk.rule("CAT-021", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.metadata.labels.get("team") == "x"  # MARK-GET

    assert '["key"]' in _refused("CAT-021", "MARK-GET", define).message

    def define_lower(pk: PackBuilder) -> None:
        @pk.rule("CAT-022", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.metadata.name.lower() == "x"  # MARK-LOWER

    err = _refused("CAT-022", "MARK-LOWER", define_lower)
    assert "a value has no method `lower`" in err.message and ".matches()" in err.hint


# other Python that cannot work on a symbolic value -------------------------------------


def test_python_protocols_on_values() -> None:
    def define_len(pk: PackBuilder) -> None:
        @pk.rule("K8S-030", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return len(o.spec.containers) > 3  # MARK-LEN

    assert "o.spec.containers.length()" in _refused("K8S-030", "MARK-LEN", define_len).hint

    def define_in_list(pk: PackBuilder) -> None:
        @pk.rule("K8S-031", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.kind in ["Deployment", "Pod"]  # MARK-IN-LIST

    assert "x.is_in([...])" in _refused("K8S-031", "MARK-IN-LIST", define_in_list).hint

    def define_in_set(pk: PackBuilder) -> None:
        @pk.rule("K8S-032", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.kind in {"Deployment", "Pod"}  # MARK-IN-SET

    assert "x.is_in([...])" in _refused("K8S-032", "MARK-IN-SET", define_in_set).hint

    def define_fstring(pk: PackBuilder) -> None:
        @pk.rule("K8S-033", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.spec.serviceAccountName == f"{o.metadata.name}-sa"  # MARK-FSTRING

    err = _refused("K8S-033", "MARK-FSTRING", define_fstring)
    assert "cannot be put in a Python string" in err.message

    def define_if(pk: PackBuilder) -> None:
        @pk.rule("K8S-034", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            if o.spec.replicas:  # MARK-IF
                return o.spec.replicas < 2
            return o.kind == "x"

    assert "no 'if' on a value" in _refused("K8S-034", "MARK-IF", define_if).hint


def test_numbers_against_strings_and_string_arithmetic() -> None:
    def define_quantity(pk: PackBuilder) -> None:
        @pk.rule("FIN-020", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.spec.cpu.quantity() > "500m"  # MARK-QTY-STR

    err = _refused("FIN-020", "MARK-QTY-STR", define_quantity)
    assert "quantity('500m')" in err.hint

    def define_length(pk: PackBuilder) -> None:
        @pk.rule("FIN-021", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.metadata.name.length() == "3"  # MARK-LEN-STR

    assert "is a number" in _refused("FIN-021", "MARK-LEN-STR", define_length).message

    def define_list(pk: PackBuilder) -> None:
        @pk.rule("FIN-022", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.spec.replicas >= [1, 2]  # MARK-GE-LIST

    assert "x.is_in([...])" in _refused("FIN-022", "MARK-GE-LIST", define_list).hint

    def define_concat(pk: PackBuilder) -> None:
        @pk.rule("FIN-023", title="t", message="m")
        def r(o):  # type: ignore[no-untyped-def]
            return o.spec.serviceAccountName == o.metadata.name + "-sa"  # MARK-CONCAT

    err = _refused("FIN-023", "MARK-CONCAT", define_concat)
    assert "arithmetic takes numbers" in err.message and "no string concatenation" in err.hint


def test_selector_and_tag_strings() -> None:
    def define_ns(pk: PackBuilder) -> None:
        @pk.rule(
            "K8S-040",
            title="t",
            message="m",
            select=select(namespaces="prod-*"),  # MARK-SEL-NS
        )
        def r(o):  # type: ignore[no-untyped-def]
            return o.kind == "x"

    with pytest.raises(DefinitionError) as exc:
        define_ns(_pack())
    assert exc.value.loc is not None and exc.value.loc.line == _line_of("MARK-SEL-NS")
    assert exc.value.hint == "write namespaces=['prod-*']"

    def define_tags(pk: PackBuilder) -> None:
        @pk.rule("K8S-041", title="t", message="m", tags="security")  # MARK-TAGS
        def r(o):  # type: ignore[no-untyped-def]
            return o.kind == "x"

    err = _refused("K8S-041", "MARK-TAGS", define_tags)
    assert err.hint == "write tags=['security']"


def test_lists_compare_deeply_as_documented() -> None:
    pk = _pack()

    @pk.rule("K8S-042", title="t", message="m")
    def r(o):  # type: ignore[no-untyped-def]
        return (o.spec.args == ["--debug"]) | (o.metadata.labels.keys() == [])

    assert pk.build().rules[0].id == "K8S-042"


# 5. one rule shipped in two packs ----------------------------------------------------------


def _name_findings(packs: list[Any]) -> list[str]:
    entity = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "Bad Name!"},
        "spec": {"owner": "group:default/team-a", "lifecycle": "production", "type": "service"},
    }
    found = NativeEngine(packs, {}).evaluate_object(entity, "backstage")
    return [rule.rule.id for rule, message, _item in found if "is not 1-63 letters" in message]


@pytest.mark.parametrize(
    "order",
    [
        ["policykit.packs.starter", "policykit.packs.catalog"],
        ["policykit.packs.catalog", "policykit.packs.starter"],
    ],
)
def test_the_name_rule_of_starter_and_catalog_fires_once(order: list[str]) -> None:
    packs = load_packs(order)
    ids = {f"{p.name}/{r.id}" for p in packs for r in p.rules}
    assert "catalog/CATALOG-001" in ids and "starter/CAT-002" not in ids
    assert "starter/CAT-001" in ids and "starter/K8S-001" in ids  # the rest of starter stays
    assert _name_findings(packs) == ["CATALOG-001"]
    assert _name_findings(load_packs(["policykit.packs.starter"])) == ["CAT-002"]


def test_same_as_rules_are_identical_and_survive_the_ir_json() -> None:
    (starter,) = load_packs(["policykit.packs.starter"])
    (catalog,) = load_packs(["policykit.packs.catalog"])
    cat2 = next(r for r in starter.rules if r.id == "CAT-002")
    cat1 = next(r for r in catalog.rules if r.id == "CATALOG-001")
    assert cat2.same_as == "catalog/CATALOG-001"
    assert (cat2.condition, cat2.selector, cat2.message) == (
        cat1.condition,
        cat1.selector,
        cat1.message,
    )
    doc = json.loads(serialize.dumps([starter]))
    schema = json.loads((Path(__file__).parents[1] / "schemas/ir.schema.json").read_text())
    jsonschema.validate(doc, schema)
    (back,) = serialize.loads(json.dumps(doc))
    assert next(r for r in back.rules if r.id == "CAT-002").same_as == "catalog/CATALOG-001"
    assert all(
        "same_as" not in r for r in json.loads(serialize.dumps([catalog]))["packs"][0]["rules"]
    )


def test_same_as_must_name_an_identical_rule(tmp_path: Path) -> None:
    pack = tmp_path / "twin.py"
    pack.write_text(
        "from policykit.dsl import PackBuilder, select\n"
        "twin = PackBuilder('twin', '1.0.0')\n"
        "@twin.rule('TWIN-001', title='t', message='m', select=select(source='backstage'),\n"
        "           same_as='catalog/CATALOG-001')\n"
        "def r(o):\n"
        "    return o.metadata.name.absent()\n"
    )
    assert len(load_packs([str(pack)])[0].rules) == 1  # alone: kept
    with pytest.raises(PackLoadError, match="declares same_as='catalog/CATALOG-001', but"):
        load_packs([str(pack), "policykit.packs.catalog"])

    pk = _pack()
    with pytest.raises(DefinitionError, match="must name a rule of another pack"):

        @pk.rule("TWIN-002", title="t", message="m", same_as="CATALOG-001")
        def r(o):  # type: ignore[no-untyped-def]
            return o.kind == "x"


def test_a_pack_loads_under_cProfile() -> None:
    """Tracing a rule body must not touch a profiler that runs: cProfile's is
    not a Python callable sys.setprofile could restore (PK100 'Profile object
    is not callable', and the profile ended), so a user could not profile code
    that loads a pack."""
    import cProfile

    pk = PackBuilder("profiled", version="1.0.0")
    with cProfile.Profile() as profiler:

        @pk.rule("PROF-001", title="t", message="m", select=select(source="backstage"))
        def owned(o):  # type: ignore[no-untyped-def]
            return o.spec.owner.exists()

        assert sys.getprofile() is profiler  # still profiling
    assert [r.id for r in pk.build().rules] == ["PROF-001"]


@pytest.mark.parametrize("code", ["0", "1", "'bye'"])
def test_a_pack_that_exits_while_imported_is_a_pack_error(tmp_path: Path, code: str) -> None:
    """``sys.exit(0)`` in a pack ended ``policykit check`` with exit 0 and no
    report: a CI gate that passed without checking anything."""
    pack = tmp_path / "leaves.py"
    pack.write_text(f"import sys\nsys.exit({code})\n")
    with pytest.raises(PackLoadError, match=r"called sys\.exit\(.*\) while being imported"):
        load_packs([str(pack)])
    r = CliRunner().invoke(cli, ["check", str(ROOT / "examples/kubernetes"), "--pack", str(pack)])
    assert r.exit_code == 2 and "PK003" in r.output, r.output


def test_two_packs_of_one_name_in_one_module_is_a_pack_error(tmp_path: Path) -> None:
    """The second was dropped silently (its rules never ran); naming the same
    source twice still loads it once."""
    pack = tmp_path / "dup.py"
    pack.write_text(
        "from policykit.dsl import PackBuilder, select\n"
        "a = PackBuilder('dup', '1.0.0')\n"
        "@a.rule('DUP-001', title='t', message='m', select=select(source='backstage'))\n"
        "def r1(o):\n"
        "    return o.metadata.name.absent()\n"
        "b = PackBuilder('dup', '2.0.0')\n"
        "@b.rule('DUP-002', title='t', message='m', select=select(source='backstage'))\n"
        "def r2(o):\n"
        "    return o.metadata.name.absent()\n"
    )
    with pytest.raises(PackLoadError, match=r"pack 'dup' is defined twice in"):
        load_packs([str(pack)])
    starter = load_packs(["policykit.packs.starter", "policykit.packs.starter"])
    assert [p.name for p in starter] == ["starter"]
