"""The layers, kept by the build: every import of every module (at the top or inside a
function) read from the source, and a failure names the arrow that runs backwards.

    pages  ->  dashboard  ->  sample_data  ->  data_access
                    \\__________________________/^

- ``data_access`` imports none of the others, nor Streamlit (the CLI, tests and benchmarks
  use it directly);
- ``sample_data`` (the generator) imports only ``data_access``;
- ``pages`` import only ``dashboard`` (a page describes a screen);
- nothing imports ``pages``;
- no module imports itself round a cycle (an import inside a function counts: it hides a
  cycle, it does not remove it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dashboard", "data_access", "pages", "sample_data")
MAY_IMPORT = {
    "data_access": {"data_access"},
    "sample_data": {"sample_data", "data_access"},
    "dashboard": {"dashboard", "data_access", "sample_data"},
    "pages": {"dashboard"},
}
NEVER = {"data_access": {"streamlit"}, "sample_data": {"streamlit"}}


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports, with the packages each import loads on the way."""
    found: set[str] = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join([*package[: len(package) - node.level + 1], *([node.module] if node.module else [])]) if node.level else node.module
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            found |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return found - {name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_arrow_runs_backwards(module):
    layer = module.split(".")[0]
    for target in GRAPH[module]:
        top = target.split(".")[0]
        if top in PACKAGES:
            assert top in MAY_IMPORT[layer], f"{module} imports {target}: {layer} may import only {sorted(MAY_IMPORT[layer])}"
        assert top not in NEVER.get(layer, set()), f"{module} imports {target}"


def test_no_import_cycles():
    internal = {name: {t for t in targets if t in MODULES and not name.startswith(t + ".")} for name, targets in GRAPH.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in internal[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in internal:
        if node not in index:
            visit(node)
    assert not cycles, cycles


def test_the_checker_sees_a_backward_arrow(tmp_path):
    """The rules bite: a page that imports the data layer is caught."""
    page = tmp_path / "pages" / "bad.py"
    page.parent.mkdir()
    page.write_text("from data_access.metrics import compute\n", encoding="utf-8")
    found = _imports("pages.bad", page)
    assert "data_access" in found and not ({t.split(".")[0] for t in found} <= MAY_IMPORT["pages"])
