"""No import cycles in policykit (issue 18, item 2), between modules or between
packages, read statically from the source (``ast``): every ``import`` at module
level and inside functions (lazy: they hide a cycle at run time, they do not
remove it). Imports under ``if TYPE_CHECKING:`` never run and are left out.

The cycles that still exist are listed in ``ALLOWED`` with the issue-18 step
that removes them. A new cycle fails, and so does an entry that no longer
matches a cycle (remove it: the list only shrinks).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT

PKG = ROOT / "policykit"

# Each entry is one strongly connected component: every module (or package) in
# it reaches every other one through imports. A package is policykit's first
# level: a subpackage (cli, engines, targets, existing, ir, dsl, loader,
# packs, ...) or a top-level module (api, toolcall, ...).
ALLOWED_MODULE_CYCLES: dict[frozenset[str], str] = {}
ALLOWED_PACKAGE_CYCLES: dict[frozenset[str], str] = {}
# targets -> engines imports still allowed, keyed by target package and import
# line: none. The compilers fold constants with policykit.ir.passes.Folder
# (targets import ir only). An entry whose line is gone fails (remove it).
ALLOWED_TARGET_ENGINE_IMPORTS: dict[str, str] = {}
# What the IR layer may import: itself and the modules below every layer.
IR_IMPORTS = {"ir", "errors", "frozen", "values", "resources", "safeio"}


@dataclass(frozen=True, slots=True)
class Edge:
    src: str
    dst: str
    lazy: bool  # inside a function: runs when called, not when imported
    line: int

    def __str__(self) -> str:
        return f"{self.src} -> {self.dst} (line {self.line}{', lazy' if self.lazy else ''})"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _known(name: str) -> str | None:
    """The policykit module ``name`` is, or is inside (``a.b.func`` -> ``a.b``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            parent = ".".join([*base, *([node.module] if node.module else [])])
        else:
            parent = node.module or ""
        # ``from a import b``: the module a.b when there is one, else a name in a
        names = [
            f"{parent}.{a.name}" if f"{parent}.{a.name}" in MODULES else parent for a in node.names
        ]
    return [m for n in names if n.startswith("policykit") and (m := _known(n))]


def _is_type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in ast.unparse(test)


def _imports(module: str, path: Path) -> Iterator[Edge]:
    is_package = path.name == "__init__.py"

    def walk(node: ast.AST, lazy: bool) -> Iterator[Edge]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                yield from (e for e in walk(ast.Module(child.orelse, []), lazy))
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for dst in _targets(module, is_package, child):
                    if dst != module:
                        yield Edge(module, dst, lazy, child.lineno)
            inner = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            yield from walk(child, lazy or inner)

    yield from walk(ast.parse(path.read_text(encoding="utf-8"), str(path)), False)


EDGES = [e for m, p in MODULES.items() for e in _imports(m, p)]


# policykit/k8s/ is two layers (issue 18, item 4): the tables of what exists
# in a cluster (built-in kinds, the CRDs in force), which the admission
# targets compile against, and the admission runtime above the engines, which
# runs what they compiled. As packages they are two nodes, so "targets read
# the kind table" and "the runtime runs a compiled policy" are not a cycle,
# while the runtime reaching back into targets still is.
K8S_TABLES = {"policykit.k8s.kinds", "policykit.k8s.kindtable", "policykit.k8s.crds"}


def _package(module: str) -> str:
    if module in K8S_TABLES:
        return "k8s.tables"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "policykit"


def _cycles(edges: list[tuple[str, str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _explain(component: frozenset[str], package_level: bool) -> str:
    key = _package if package_level else (lambda m: m)
    inside = [
        str(e) for e in EDGES if key(e.src) in component and key(e.dst) in component
        and key(e.src) != key(e.dst)
    ]  # fmt: skip
    return f"{sorted(component)}:\n    " + "\n    ".join(inside)


def _check(found: list[frozenset[str]], allowed: dict[frozenset[str], str], package: bool) -> None:
    new = [c for c in found if c not in allowed]
    assert not new, "import cycle(s) not in the allow-list:\n" + "\n".join(
        _explain(c, package) for c in new
    )
    gone = [sorted(c) for c in allowed if c not in found]
    assert not gone, f"no longer a cycle, remove from the allow-list: {gone}"


def test_the_graph_is_read() -> None:
    """A sanity check of the reading itself: known edges, lazy ones marked."""
    pairs: dict[tuple[str, str], bool] = {}
    for e in EDGES:  # lazy: every import of dst in src is inside a function
        pairs[e.src, e.dst] = pairs.get((e.src, e.dst), True) and e.lazy
    assert pairs[("policykit.engines.native", "policykit.ir.evaluate")] is False
    assert pairs[("policykit.ir.evaluate.closures", "policykit.ir.reads")] is False
    assert pairs[("policykit.cli.commands", "policykit.api")] is True  # start-up (issue 21)
    assert pairs[("policykit.k8s.kinds", "policykit.k8s.crds")] is False
    assert len(MODULES) > 100 and len(EDGES) > 300


def test_no_import_cycle_between_modules() -> None:
    _check(_cycles([(e.src, e.dst) for e in EDGES]), ALLOWED_MODULE_CYCLES, package=False)


def _line(e: Edge) -> str:
    return MODULES[e.src].read_text(encoding="utf-8").splitlines()[e.line - 1].strip()


def _allowed_target_import(e: Edge) -> bool:
    return any(
        e.src.startswith(pkg + ".") and e.dst == "policykit.engines.native" and _line(e) == line
        for pkg, line in ALLOWED_TARGET_ENGINE_IMPORTS.items()
    )


def test_no_import_cycle_between_packages() -> None:
    pairs = [(_package(e.src), _package(e.dst)) for e in EDGES if not _allowed_target_import(e)]
    _check(_cycles([(a, b) for a, b in pairs if a != b]), ALLOWED_PACKAGE_CYCLES, package=True)


def test_targets_do_not_import_engines() -> None:
    """Targets compile the IR (issue 18, item 2): what they know about a rule
    comes from policykit.ir (passes, evaluate), never from an engine."""
    bad = [
        str(e)
        for e in EDGES
        if e.src.startswith("policykit.targets")
        and e.dst.startswith("policykit.engines")
        and not _allowed_target_import(e)
    ]
    assert not bad, "policykit/targets/ imports policykit/engines/:\n" + "\n".join(bad)
    held = {p for p in ALLOWED_TARGET_ENGINE_IMPORTS for e in EDGES if _allowed_target_import(e)
            and e.src.startswith(p + ".")}  # fmt: skip
    gone = sorted(set(ALLOWED_TARGET_ENGINE_IMPORTS) - held)
    assert not gone, f"no longer imported, remove from ALLOWED_TARGET_ENGINE_IMPORTS: {gone}"


def test_the_ir_imports_only_the_ir_and_base_modules() -> None:
    """The IR is the bottom layer: the reference semantics and the passes live
    there, and every engine and target builds on them."""
    up = [str(e) for e in EDGES if _package(e.src) == "ir" and _package(e.dst) not in IR_IMPORTS]
    assert not up, "policykit/ir/ imports a layer above it:\n" + "\n".join(up)


def test_the_cli_commands_do_not_import_main() -> None:
    """Subcommands take shared options from cli/options.py; main registers them."""
    back = [str(e) for e in EDGES if e.dst == "policykit.cli.main" and e.src != "policykit"]
    assert not [b for b in back if not b.startswith("policykit.__main__")], back
