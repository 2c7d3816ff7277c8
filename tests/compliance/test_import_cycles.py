"""Compliance's modules form no import circle, and its core leans on nothing
in the workspace.

Every import is read from the source (AST): those at module level and those
inside functions (a local import only defers a circle to the first call, it
does not remove it). Imports under ``if TYPE_CHECKING:`` never run and are
left out. A circle that only works through attribute access or a deferred
import is a knot a later change tightens: one module cannot be understood,
tested or moved without the other.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "compliance"

# The one circle compliance allows, by its closing edge (importer, imported).
# An export is requested in ``compliance.workspace.exports`` and its Celery
# task, in ``compliance.workspace.tasks``, calls back into that module to build
# it; the request enqueues the task on commit (a rolled-back request queues
# nothing), importing the task module inside the function that enqueues. Keyed
# by the importer's module or package, so splitting ``exports`` into a package
# keeps it allowed.
ALLOWED_LAZY_EDGES = {
    ("compliance.workspace.exports", "compliance.workspace.tasks"),
}
# The core (``compliance/*.py``) may reach into the workspace only to route
# its pages (``urls``) and register its Celery tasks (``apps``).
CORE_TO_WORKSPACE_ALLOWED = {"compliance.apps", "compliance.urls"}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources(root: Path) -> dict[str, Path]:
    return {
        _module_name(path, root): path
        for path in sorted((root / PACKAGE).rglob("*.py"))
        if "migrations" not in path.parts
    }


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, *, lazy: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement with whether it runs inside a function, skipping
    ``if TYPE_CHECKING:`` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from _imports(ast.Module(body=[child], type_ignores=[]), lazy=lazy)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, lazy
        inner = lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        yield from _imports(node, lazy=inner)


def _resolve(importer: str, node: ast.Import | ast.ImportFrom, known: set[str]) -> set[str]:
    """The project modules an import statement loads (within ``known``)."""
    targets: set[str] = set()
    base = ""
    if isinstance(node, ast.Import):
        candidates = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = importer.split(".")
            package = package[: len(package) - node.level + (1 if _is_package(importer, known) else 0)]
            base = ".".join([*package, base] if base else package)
        # ``from package import module`` loads the module; ``from module import name`` the module.
        candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
    for candidate in candidates:
        if candidate in known:
            targets.add(candidate)
    if base and any(target != base for target in targets):
        targets.discard(base)  # ``from package import module``: the module is what counts
    return targets


def _is_package(name: str, known: set[str]) -> bool:
    return any(other.startswith(name + ".") for other in known)


def import_graph(root: Path = ROOT) -> dict[str, dict[str, bool]]:
    """importer -> {imported: lazy}; ``lazy`` is True only when every import of
    that module in the importer is inside a function."""
    sources = _sources(root)
    known = set(sources)
    graph: dict[str, dict[str, bool]] = {name: {} for name in sources}
    for name, path in sources.items():
        for node, lazy in _imports(ast.parse(path.read_text(), str(path))):
            for target in _resolve(name, node, known):
                if target == name or (_is_package(target, known) and name.startswith(target + ".")):
                    continue  # a package's own __init__ is not a circle
                graph[name][target] = graph[name].get(target, True) and lazy
    return graph


def _allowed(importer: str, imported: str, lazy: bool) -> bool:
    return lazy and any(
        imported == target and (importer == source or importer.startswith(source + "."))
        for source, target in ALLOWED_LAZY_EDGES
    )


def cycles(graph: dict[str, dict[str, bool]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each
    sorted, after dropping the allowlisted edges."""
    edges = {
        source: sorted(t for t, lazy in targets.items() if not _allowed(source, t, lazy))
        for source, targets in graph.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, []):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def _describe(group: list[str], graph: dict[str, dict[str, bool]]) -> str:
    inside = set(group)
    edges = [
        f"{source} -> {target}{' (inside a function)' if lazy else ''}"
        for source in group
        for target, lazy in sorted(graph[source].items())
        if target in inside and not _allowed(source, target, lazy)
    ]
    return "circle of " + ", ".join(group) + ": " + "; ".join(edges)


def test_compliance_has_no_import_circle_but_the_documented_one() -> None:
    graph = import_graph()
    assert len(graph) > 20  # the scan really reads the package
    assert [_describe(group, graph) for group in cycles(graph)] == []


def test_the_allowed_circle_is_the_on_commit_task_dispatch() -> None:
    """The allowlist names a circle that exists, closed by a local import (a
    stale entry would allow a future circle silently)."""
    graph = import_graph()
    for source, target in ALLOWED_LAZY_EDGES:
        importers = [name for name in graph if name == source or name.startswith(source + ".")]
        assert any(graph[name].get(target) is True for name in importers), (source, target)
        assert any(name in graph[target] for name in importers) or any(
            name.startswith(source) for name in graph[target]
        ), (source, target)


def test_the_core_does_not_import_the_workspace() -> None:
    graph = import_graph()
    known = set(graph)
    core = [
        name
        for name in graph
        if name.count(".") == 1 and not _is_package(name, known) and name not in CORE_TO_WORKSPACE_ALLOWED
    ]
    offenders = [
        f"{name} -> {target}"
        for name in sorted(core)
        for target in graph[name]
        if target.startswith(f"{PACKAGE}.workspace")
    ]
    assert offenders == []


def test_the_scan_sees_circles_through_local_imports(tmp_path: Path) -> None:
    package = tmp_path / PACKAGE
    (package / "workspace").mkdir(parents=True)
    for name, source in {
        "__init__.py": "",
        "services.py": "from compliance import policies\n",
        "policies.py": "def f():\n    from compliance.services import x\n",
        "sealing.py": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from compliance import verification\n"
        ),
        "verification.py": "from compliance.sealing import verify_seals\n",
        "tasks.py": "from .workspace import tasks\n",
        "workspace/__init__.py": "",
        "workspace/tasks.py": "from compliance.workspace import exports\n",
        "workspace/exports.py": "def queue():\n    from compliance.workspace.tasks import export\n",
    }.items():
        (package / name).write_text(source)
    graph = import_graph(tmp_path)

    assert graph["compliance.policies"] == {"compliance.services": True}
    assert graph["compliance.tasks"] == {"compliance.workspace.tasks": False}
    assert cycles(graph) == [["compliance.policies", "compliance.services"]]
