"""No import cycles between the modules of skil_sdk.

Every ``import`` statement counts, at module level or inside a function: a cycle that
only closes at run time is still a cycle (the modules cannot be understood or split
apart one at a time). ``from skil_sdk.x import y`` imports the module ``skil_sdk.x.y``
when there is one, else ``skil_sdk.x``; importing a package imports its ``__init__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import skil_sdk

PACKAGE_DIR = Path(skil_sdk.__file__).resolve().parent
ROOT = PACKAGE_DIR.name


def module_name(path: Path) -> str:
    """The dotted name of a source file of the package (a package is its ``__init__``)."""
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> source file."""
    return {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that the module ``name`` (at ``path``) imports anywhere."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, name, is_package)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in known else base)
    return {target for target in found if target in known and target != name}


def _absolute(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    """The absolute module name a ``from ... import`` names (relative ones resolved)."""
    if not node.level:
        return node.module or ""
    package = name.split(".") if is_package else name.split(".")[:-1]
    anchor = package[: len(package) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    modules = all_modules()
    known = set(modules)
    return {name: imported_modules(name, path, known) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module, each sorted (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:
        nonlocal counter
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return sorted(found)


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    # module level, `from package import module`
    assert "skil_sdk.builder.cache" in graph["skil_sdk.builder.api"]
    # inside a function
    assert "skil_sdk.builder.bundle" in graph["skil_sdk.builder.api"]
    # `import skil_sdk` is an import of the package's __init__
    assert ROOT in graph["skil_sdk.builder.wheels"]
    assert "skil_sdk.errors" in graph[ROOT]


def test_relative_imports_are_resolved() -> None:
    def resolve(statement: str, name: str, is_package: bool = False) -> str:
        node = ast.parse(statement).body[0]
        assert isinstance(node, ast.ImportFrom)
        return _absolute(node, name, is_package)

    assert resolve("from .cache import x", "skil_sdk.builder.api") == "skil_sdk.builder.cache"
    assert resolve("from .. import home", "skil_sdk.builder.api") == "skil_sdk"
    assert resolve("from . import api", "skil_sdk.builder", is_package=True) == "skil_sdk.builder"


def test_cycles_are_found_in_a_small_graph() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert found == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_stores_do_not_import_the_builder() -> None:
    graph = import_graph()
    found = sorted(
        (module, target)
        for module, targets in graph.items()
        if module.startswith("skil_sdk.store.")
        for target in targets
        if target.startswith("skil_sdk.builder")
    )
    assert found == []
