"""``@frozen``: a frozen, slotted dataclass that is cheaper to define (issue 21).

A class decorated ``@frozen`` behaves as ``@dataclass(frozen=True, slots=True)``
makes it behave on Python 3.11 and 3.12: the same ``__init__`` (parameters,
defaults, factories, ``__post_init__``), ``__eq__`` and ``__hash__`` over the
same fields (``compare`` and ``hash`` of :func:`dataclasses.field` honoured),
the same ``__repr__``, ``__match_args__``, ``__slots__`` and
``__dataclass_params__``; :func:`dataclasses.fields`, ``replace`` and ``asdict``
work on it; it pickles and copies; assigning or deleting a field raises
:class:`dataclasses.FrozenInstanceError`. (Python 3.13's dataclass compares
field by field after an identity test, so there an object holding a NaN is
unequal to itself; ``@frozen`` keeps the tuple comparison of 3.11 and 3.12.)

Why: Python 3.11's dataclass compiles every method it writes with an ``exec``
of its own, six for a frozen class (``__init__``, ``__repr__``, ``__eq__``,
``__hash__``, ``__setattr__``, ``__delattr__``): 1.3-1.9 ms per class on the
project's 2-core machine, and ``policykit check`` of one file defines the IR's
30 node and rule classes before it reads anything. Here only ``__init__`` is
compiled; the other methods are shared functions that read the fields from a
per-class table.

The price: making an object assigns each field through :func:`_setattr` (about
twice the dataclass's time to make a three-field object), and ``==`` and
``hash`` are about twice as slow. So ``@frozen`` is for classes made and
compared a few thousand times a run (the IR, made when a pack loads), not for
the findings and documents a run makes per object. :func:`_setattr` allows the
first assignment of a field, which ``__init__`` makes for every field: a field
that ``__init__`` does not set (``init=False`` without a default) is refused
here, and a class that derives from a dataclass is made by ``dataclass``
itself. ``tests/test_frozen.py`` holds each behaviour to the dataclass's.
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform

_T = TypeVar("_T")

_Key = Callable[[Any], tuple[Any, ...]]


def _key(names: list[str]) -> _Key:
    """A function giving an object's values of ``names`` as a tuple (what the
    dataclass's ``__eq__`` and ``__hash__`` compare and hash)."""
    if len(names) >= 2:
        return attrgetter(*names)
    if names:
        get = attrgetter(names[0])
        return lambda obj: (get(obj),)
    return lambda obj: ()


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        key = self.__class__.__pk_compare__
        return key(self) == key(other)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(self.__class__.__pk_hash__(self))


@reprlib.recursive_repr()
def _repr(self: Any) -> str:
    shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__pk_repr__)
    return f"{self.__class__.__qualname__}({shown})"


def _setattr(self: Any, name: str, value: Any) -> None:
    # a field is assigned once, by __init__; an unset slot is what tells that
    # first assignment from a later one (pickle and copy use _setstate)
    if hasattr(self, name):
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
    object.__setattr__(self, name, value)


def _delattr(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


def _getstate(self: Any) -> list[Any]:
    return [getattr(self, n) for n in self.__pk_fields__]


def _setstate(self: Any, state: list[Any]) -> None:
    for name, value in zip(self.__pk_fields__, state, strict=True):
        object.__setattr__(self, name, value)


_SHARED: dict[str, Callable[..., Any]] = {
    "__eq__": _eq,
    "__hash__": _hash,
    "__repr__": _repr,
    "__setattr__": _setattr,
    "__delattr__": _delattr,
    "__getstate__": _getstate,
    "__setstate__": _setstate,
}


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def frozen(cls: type[_T]) -> type[_T]:
    """``cls`` as ``@dataclass(frozen=True, slots=True)`` would make it."""
    if any(dataclasses.is_dataclass(base) for base in cls.__mro__[1:]):
        # the dataclass checks a base's parameters and fields itself
        return dataclasses.dataclass(cls, frozen=True, slots=True)
    own = [name for name in _SHARED if name in cls.__dict__]
    if own:
        raise TypeError(f"@frozen class {cls.__qualname__} defines {', '.join(own)}")
    made: Any = dataclasses.dataclass(cls, slots=True, eq=False, repr=False)
    fields = dataclasses.fields(made)
    unset = [
        f.name
        for f in fields
        if not f.init
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if unset:  # __post_init__ would have to set it, and _setattr would let it be set later too
        raise TypeError(
            f"@frozen class {cls.__qualname__}: field {unset[0]!r} has init=False and no "
            "default; use @dataclass(frozen=True, slots=True)"
        )
    made.__pk_fields__ = tuple(f.name for f in fields)
    # read through the class (a function kept on it would bind to an object)
    made.__pk_compare__ = _key([f.name for f in fields if f.compare])
    made.__pk_hash__ = _key([f.name for f in fields if (f.compare if f.hash is None else f.hash)])
    made.__pk_repr__ = tuple(f.name for f in fields if f.repr)
    for name, fn in _SHARED.items():
        setattr(made, name, fn)
    # what the dataclass would record (subclasses, pretty-printers read it)
    params = made.__dataclass_params__
    params.eq = params.repr = params.frozen = True
    return made  # type: ignore[no-any-return]
