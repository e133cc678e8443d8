"""Files shipped inside the package: JSON Schemas and the Rego library.

``policykit/schemas`` and ``policykit/rego`` are links to the top-level
``schemas/`` and ``rego/`` folders, so the repository keeps one copy.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any


@cache
def load_schema(name: str) -> dict[str, Any]:
    from importlib import resources  # tempfile, shutil ...: only when a schema is read

    text = resources.files("policykit").joinpath("schemas", name).read_text(encoding="utf-8")
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
