"""What the tests of ``verify``'s shared runners (tests/test_verify_shared_opa.py,
tests/test_verify_shared_cel.py) build their runs from: generated objects, and a
report as plain values to compare."""

from __future__ import annotations

import dataclasses
import random
from typing import Any


def generated_docs(n: int, seed: int, extra: str = "") -> list[Any]:
    """``n`` generated objects, a Component then a Deployment, one per file
    (``benchmarks/generate.py``), after the documents of ``extra``."""
    from benchmarks.generate import component, deployment
    from policykit.loader import load_text

    rng = random.Random(seed)
    docs = list(load_text(extra, "repo/extra.yaml").documents) if extra else []
    for i in range(n // 2):
        for text, kind in ((component(rng, i), "c"), (deployment(rng, i), "d")):
            docs += load_text(text, f"repo/{kind}-{i}.yaml").documents
    return docs


def plain(report: Any) -> dict[str, Any]:
    """A :class:`~policykit.verify_core.VerifyReport` as plain values."""
    return {
        "compared": dict(report.compared),
        "mismatches": [dataclasses.asdict(m) for m in report.mismatches],
        "checked": report.checked,
        "sampled": {k: dataclasses.asdict(v) for k, v in report.sampled.items()},
        "left_out": report.left_out,
    }
