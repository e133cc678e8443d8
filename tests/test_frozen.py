"""``@frozen`` (policykit/frozen.py) behaves as ``@dataclass(frozen=True,
slots=True)``: the same class is defined both ways and every behaviour a
caller can see is compared (issue 21: the IR's classes are defined with it
to start faster)."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policykit.frozen import frozen


def _body() -> dict[str, Any]:
    """The class body both decorators get: defaults, a factory, a field left
    out of comparison, one left out of the hash, one left out of the repr,
    one not taken by ``__init__`` and set by ``__post_init__``."""

    def post_init(self: Any) -> None:
        object.__setattr__(self, "derived", len(self.name))

    return {
        "__annotations__": {
            "name": "str",
            "value": "Any",
            "items": "tuple[Any, ...]",
            "tags": "list[str]",
            "note": "str",
            "meta": "Any",
            "secret": "str",
            "derived": "int",
        },
        "__doc__": "A test class.",
        "items": (),
        "tags": dataclasses.field(default_factory=list, hash=False),
        "note": dataclasses.field(default="", compare=False),
        "meta": dataclasses.field(default=None, hash=False),
        "secret": dataclasses.field(default="s", repr=False),
        "derived": dataclasses.field(init=False, default=0),
        "__post_init__": post_init,
    }


def _define(decorate: Any) -> Any:
    cls = type("Thing", (), _body())
    cls.__module__ = __name__
    return decorate(cls)


Frozen = _define(frozen)
Plain = _define(dataclasses.dataclass(frozen=True, slots=True))
# pickle finds each class by name in this module
Frozen.__qualname__ = Frozen.__name__ = "Frozen"
Plain.__qualname__ = Plain.__name__ = "Plain"

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=5)
)
values = st.recursive(scalars, lambda inner: st.tuples(inner, inner), max_leaves=4)
hashables = st.fixed_dictionaries(
    {"name": st.text(max_size=4), "value": values, "items": st.tuples(values)},
    optional={"note": st.text(max_size=3), "meta": st.just([1, 2]), "secret": st.text(max_size=2)},
)


def _both(kwargs: dict[str, Any]) -> tuple[Any, Any]:
    return Frozen(**kwargs), Plain(**kwargs)


def _shown(text: str) -> str:
    return text.replace("Frozen(", "Plain(")


@given(hashables, hashables)
def test_equality_hash_and_repr_are_the_dataclass_ones(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    fa, pa = _both(a)
    fb, pb = _both(b)
    assert (fa == fb) is (pa == pb)
    assert (fa != fb) is (pa != pb)
    assert (fa == fa) is (pa == pa)  # a NaN compares equal to itself in a tuple
    assert _shown(repr(fa)) == repr(pa)
    if "meta" not in a:  # a list in a hashed field: unhashable both ways
        assert (hash(fa) == hash(Frozen(**a))) and (hash(pa) == hash(Plain(**a)))
        if pa == pb and "meta" not in b:
            assert hash(fa) == hash(fb)
    assert fa.derived == pa.derived == len(a["name"])


def test_unhashable_field_and_excluded_fields() -> None:
    f, p = Frozen("n", 1, meta=[1]), Plain("n", 1, meta=[1])
    assert hash(f) == hash(Frozen("n", 1, meta=[2]))  # meta is not hashed
    assert hash(p) == hash(Plain("n", 1, meta=[2]))
    assert Frozen("n", 1, note="a") == Frozen("n", 1, note="b")  # note is not compared
    with pytest.raises(TypeError):
        hash(Frozen("n", [1]))
    with pytest.raises(TypeError):
        hash(Plain("n", [1]))
    assert Frozen("n", 1) != Plain("n", 1)  # another class: NotImplemented both ways
    assert Frozen("n", 1).__eq__(Plain("n", 1)) is NotImplemented
    assert "secret" not in repr(Frozen("n", 1))


def test_frozen_errors_and_slots() -> None:
    f, p = Frozen("n", 1), Plain("n", 1)
    for obj in (f, p):
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'name'"):
            obj.name = "x"
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'name'"):
            del obj.name
        assert not hasattr(obj, "__dict__")
    # not a field: no slot to hold it (the dataclass raises TypeError here, a
    # CPython defect of frozen slotted classes: its __setattr__ names the class
    # the slots replaced)
    with pytest.raises(AttributeError):
        f.other = 1
    assert Frozen.__slots__ == Plain.__slots__
    assert Frozen.__match_args__ == Plain.__match_args__
    names = [f.name for f in dataclasses.fields(Frozen)]
    assert names == [f.name for f in dataclasses.fields(Plain)]
    assert Frozen.__doc__ == Plain.__doc__ == "A test class."


def test_init_errors_are_the_dataclass_ones() -> None:
    for cls in (Frozen, Plain):
        with pytest.raises(TypeError, match="missing 1 required positional argument: 'value'"):
            cls("n")
        with pytest.raises(TypeError, match="unexpected keyword argument 'derived'"):
            cls("n", 1, derived=2)
    assert Frozen("n", 1).tags is not Frozen("n", 1).tags  # the factory runs per object


@given(hashables)
def test_replace_asdict_pickle_copy(a: dict[str, Any]) -> None:
    f, p = _both(a)
    assert dataclasses.asdict(f) == dataclasses.asdict(p)
    assert dataclasses.astuple(f) == dataclasses.astuple(p)
    assert dataclasses.replace(f, name="zz") == Frozen(**{**a, "name": "zz"})
    for obj in (f, p):
        for twin in (
            pickle.loads(pickle.dumps(obj)),
            *(pickle.loads(pickle.dumps(obj, protocol=p)) for p in range(6)),
            copy.copy(obj),
            copy.deepcopy(obj),
        ):
            assert type(twin) is type(obj)
            assert repr(dataclasses.astuple(twin)) == repr(dataclasses.astuple(obj))  # NaN too
            assert twin.derived == obj.derived
            with pytest.raises(dataclasses.FrozenInstanceError):
                twin.name = "x"


def test_a_class_defining_what_frozen_shares_is_refused() -> None:
    with pytest.raises(TypeError, match="defines __eq__"):

        @frozen
        class Bad:
            x: int

            def __eq__(self, other: object) -> bool:
                return True


def test_dataclass_params_subclasses_and_recursive_repr() -> None:
    assert Frozen.__dataclass_params__.frozen and Plain.__dataclass_params__.frozen
    assert Frozen.__dataclass_params__.eq and Frozen.__dataclass_params__.repr
    for base in (Frozen, Plain):
        # a frozen dataclass may derive from either; a mutable one from neither
        sub = dataclasses.dataclass(frozen=True, slots=True)(
            type("Sub", (base,), {"__annotations__": {"extra": "int"}, "extra": 0})
        )
        obj = sub("n", 1, extra=2)
        assert obj.extra == 2 and obj.derived == 1
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.extra = 3
        with pytest.raises(TypeError, match="cannot inherit non-frozen dataclass"):
            dataclasses.dataclass(type("Mutable", (base,), {"__annotations__": {"y": "int"}}))
        # @frozen over a dataclass base is the dataclass's own
        again = frozen(type("Again", (base,), {"__annotations__": {"z": "int"}, "z": 0}))
        assert again("n", 1, z=5).z == 5
        with pytest.raises(dataclasses.FrozenInstanceError):
            again("n", 1).z = 1
    loop_f, loop_p = Frozen("n", []), Plain("n", [])
    loop_f.value.append(loop_f)
    loop_p.value.append(loop_p)
    assert _shown(repr(loop_f)) == repr(loop_p)
    assert "[...]" in repr(loop_f)


def test_a_field_init_does_not_set_is_refused() -> None:
    """``_setattr`` lets a field be assigned once; ``__init__`` must be that once."""
    with pytest.raises(TypeError, match="field 'y' has init=False and no default"):

        @frozen
        class Late:
            x: int
            y: int = dataclasses.field(init=False)


def test_policykit_ir_nodes_are_frozen_value_classes() -> None:
    from policykit.ir.nodes import Compare, Literal, Path

    a = Compare("==", Path("object", ("metadata", "name")), Literal("x"))
    b = Compare("==", Path("object", ("metadata", "name")), Literal("x"))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert repr(a) == (
        "Compare(op='==', left=Path(root='object', segments=('metadata', 'name')), "
        "right=Literal(value='x'))"
    )
    assert pickle.loads(pickle.dumps(a)) == a
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.op = "!="  # type: ignore[misc]
