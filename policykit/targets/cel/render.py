"""Message rendering in CEL (docs/semantics.md, "Messages"): a value as the
text the reference engine writes for it."""

from __future__ import annotations

from policykit.targets.cel import printer as pr

_STRIP_ZEROS = "('1' + {s}).replace('0', ' ').trim().replace(' ', '0').substring(1)"


def render_number(x: str) -> str:
    """CEL text rendering the double ``x``: integral values
    as integers; others rounded half up to six decimals, trailing zeros removed.
    The whole part and the fraction apart (``_p``): scaling the whole value by
    10^6 first passed int64 from ~9.2e12 on, the expression erred and the
    message fell back to the static one. Kept shallow: cel-cpp refuses
    expressions nested deeper than 32."""
    ax = f"({x} < 0.0 ? -{x} : {x})"
    frac = _STRIP_ZEROS.format(s="string(1000000 + _p[1] % 1000000).substring(1)")
    return (
        f"({x} <= -9.0e18 || {x} >= 9.0e18 ? string({x}) : "
        f"{x} == double(int({x})) ? string(int({x})) : "
        + pr.let(
            "_p",
            f"[int({ax}), int(({ax} - double(int({ax}))) * 1000000.0 + 0.5)]",
            f"[{x} < 0.0 && (_p[0] != 0 || _p[1] != 0) ? '-' : '', "
            f"string(_p[1] == 1000000 ? _p[0] + 1 : _p[0]), "
            f"_p[1] % 1000000 == 0 ? '' : '.' + {frac}].join('')",
        )
        + ")"
    )


def _render_item(i: str) -> str:
    """CEL text rendering ``i``, a scalar or an item of a list: lists and
    objects as ``<list>`` and ``<object>``, null as nothing."""
    return (
        f"type({i}) == string ? {i} : type({i}) == list ? '<list>' : "
        f"type({i}) == map ? '<object>' : {i} == null ? '' : "
        f"type({i}) == double ? {render_number(i)} : string({i})"
    )


def render_any(v: str) -> str:
    """CEL text rendering the value ``v`` (docs/semantics.md, "Messages"): a
    list as ``[a, b]`` of its rendered items, anything else as an item. One
    copy of the item renderer serves both (a scalar is a list of one)."""
    is_list = f"type({v}) == list"
    return (
        f"({is_list} ? '[' : '') + ({is_list} ? {v} : [{v}]).map(_i, {_render_item('_i')})"
        f".join(', ') + ({is_list} ? ']' : '')"
    )
