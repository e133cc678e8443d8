"""The portable regex dialect: what is accepted, what is refused, and why."""

from __future__ import annotations

import pytest

from policykit.errors import RegexDialectError
from policykit.ir.regex import check_portable, compile_portable

ACCEPTED = [
    r"^[a-z0-9]+(-[a-z0-9]+)*$",
    r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$",
    r"\d{1,3}\.\d+",
    r"^sha256:[a-f0-9]{64}$",
    r"(?:ab|cd)+?",
    r"(?P<team>[a-z]+)/x",
    r"\bword\B",
    r"[^/]+@sha256:",
    r"\x41\t\n",
    r"\Afoo",
    r"[\]\[]",
    r"é+ü",
    r"a{2,1000}",
    r"[]a]",
]

REFUSED = [
    (r"(?i)abc", "inline flags"),
    (r"(?=x)", "lookaround"),
    (r"(?<!x)y", "lookaround"),
    (r"(a)\1", "back-reference"),
    (r"a\s", "\\s"),
    (r"a\S", "\\S"),
    (r"end\Z", "\\Z"),
    (r"end\z", "\\z"),
    (r"\u00e9", "\\u"),
    (r"[[:alpha:]]", "POSIX"),
    (r"a{,3}", "{,n}"),
    (r"a{1001}", "bounds"),
    (r"a*+", "possessive"),
    (r"(?>a)", "atomic"),
    (r"[a&&b]", "nested-set"),
    (r"(unclosed", "invalid"),
    (r"[abc", "unterminated"),
    (r"\0", "octal"),
    ("trailing\\", "backslash"),
]


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_portable_patterns_are_accepted(pattern: str) -> None:
    check_portable(pattern)


@pytest.mark.parametrize(("pattern", "why"), REFUSED)
def test_non_portable_patterns_are_refused_with_a_reason(pattern: str, why: str) -> None:
    with pytest.raises(RegexDialectError) as exc:
        check_portable(pattern)
    assert exc.value.code == "PK101"
    assert exc.value.message  # one clear sentence


def test_dollar_is_end_of_text_not_before_trailing_newline() -> None:
    rx = compile_portable("^a$")
    assert rx.search("a")
    assert not rx.search("a\n")
    assert compile_portable("[$]").search("$")  # a '$' in a class stays literal


def test_word_and_digit_classes_are_ascii() -> None:
    assert not compile_portable(r"^\w+$").search("é")
    assert not compile_portable(r"\d").search("٣")
