"""The module map of docs/architecture.md, checked: imports point one way, no module imports one
that imports it back, package __init__ files only re-export, and no module grows past ~600 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "natlens"
MAX_LINES = 650  # "about 600": a module that outgrows it is split where its parts separate

# Each layer and the layers it may import (besides its own and the base). The order is the data
# flow: bytes (sources) → records (formats) → the case → the engine → analyses → output → cli.
BASE = {"natlens", "errors", "schema", "vocabulary", "accounting", "sqltree", "progress"}
MAY_IMPORT: dict[str, set[str]] = {
    "formats": set(),
    "case": set(),
    "sources": {"formats", "case"},
    "engine": {"case", "formats"},
    "ingest": {"sources", "formats", "case", "engine"},
    "spark_ingest": {"ingest", "sources", "formats", "case", "engine"},
    "export": {"analyses", "case", "engine"},
    "simulate": {"formats"},  # the simulator never imports analyses: its truth stays its own
    "insights": {"case", "engine"},
    "analyses": {"formats", "case", "engine", "topology", "insights"},
    "topology": {"formats", "render"},
    "render": {"analyses"},
    "report": {"analyses", "case", "engine", "formats", "topology", "render", "insights"},
    "cli": {"*"},
    "demo": {"*"},
    "__main__": {"cli"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "natlens"


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """The natlens modules ``path`` imports (names imported from a package count as the package,
    unless they are its submodules). TYPE_CHECKING blocks do not import at run time."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if not top_level_only:
        typing_only = {
            id(n)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for n in ast.walk(block)
        }
        nodes = [n for n in nodes if id(n) not in typing_only]
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("natlens"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("natlens"))
    return found


def test_imports_point_one_way() -> None:
    wrong = []
    for module, path in MODULES.items():
        source = _layer(module)
        allowed = MAY_IMPORT.get(source, set()) | BASE | {source}
        for target in _imports(path, top_level_only=False):
            if "*" not in allowed and _layer(target) not in allowed:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports against the module map (docs/architecture.md):\n" + "\n".join(wrong)


def test_no_import_cycles() -> None:
    graph = {m: {d for d in _imports(p, top_level_only=True) if d in MODULES and d != m}
             for m, p in MODULES.items()}  # fmt: skip
    state: dict[str, int] = {}
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(" → ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "modules that import each other at load time:\n" + "\n".join(cycles)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("__init__.py")), ids=str)
def test_package_init_only_re_exports(path: Path) -> None:
    for node in ast.parse(path.read_text()).body:
        docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        exports = isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__all__"
        version = isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__version__"
        imports = isinstance(node, ast.ImportFrom | ast.Import)
        assert docstring or exports or version or imports, (
            f"{path}:{node.lineno}: code in a package __init__; put it in a module and re-export it"
        )


def test_no_module_outgrows_the_limit() -> None:
    long = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines, to split: {long}"
