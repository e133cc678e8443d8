"""Words in the messages policykit prints, shared by the library and the
command line (a module of its own: the command line imports it at start-up)."""

from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 file``, ``2 files``, ``0 files`` (``many``: an irregular plural)."""
    return f"{n} {word if n == 1 else many or word + 's'}"
