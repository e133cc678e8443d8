"""Files shipped inside the package: JSON Schemas and the Rego library.

``policykit/schemas`` and ``policykit/rego`` are links to the top-level
``schemas/`` and ``rego/`` folders, so the repository keeps one copy.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any


def read_text(*parts: str) -> str:
    """A file shipped in the package, by its path parts under ``policykit/``:
    read from the package's directory, or (a package that is not a directory
    on disk, e.g. zipped) through :mod:`importlib.resources`, whose import
    brings tempfile, shutil, zipfile, bz2 and lzma: ~10 ms that ``check`` of
    one file with a configuration need not pay (start-up, issue 21)."""
    try:
        return Path(__file__).parent.joinpath(*parts).read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        from importlib import resources

        return resources.files("policykit").joinpath(*parts).read_text(encoding="utf-8")


@cache
def load_schema(name: str) -> dict[str, Any]:
    text = read_text("schemas", name)
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


def rego_library() -> dict[str, str]:
    """The Rego helper library: bundle path → module text, sorted by path."""
    from importlib import resources

    root = resources.files("policykit").joinpath("rego")
    out: dict[str, str] = {}

    def visit(node: Any, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir():
                visit(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".rego") and not child.name.endswith("_test.rego"):
                out[f"{prefix}{child.name}"] = child.read_text(encoding="utf-8")

    visit(root, "")
    return out
