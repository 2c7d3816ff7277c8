"""accounts and archive are leaves of the app stack (docs: DESIGN.md): they
import no other Kontor app, except for type hints under ``TYPE_CHECKING``.
Migration files are history and are not read."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KONTOR_APPS = {"accounts", "archive", "compliance", "config", "hr", "messenger"}


def _type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _imported_apps(tree: ast.AST) -> set[str]:
    """Top-level packages imported anywhere in ``tree`` (inside functions too),
    leaving out ``if TYPE_CHECKING:`` blocks."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking_block(node):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def back_imports(app: str) -> dict[str, set[str]]:
    """Each module of ``app`` that imports another Kontor app, with those apps."""
    problems = {}
    for path in sorted((ROOT / app).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        others = _imported_apps(ast.parse(path.read_text(), str(path))) & KONTOR_APPS - {app}
        if others:
            problems[str(path.relative_to(ROOT))] = others
    return problems


@pytest.mark.parametrize("app", ["accounts", "archive"])
def test_the_leaf_apps_import_no_other_kontor_app(app: str) -> None:
    assert back_imports(app) == {}


def test_the_scan_sees_a_back_import_but_not_a_type_hint() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from accounts.models import User\n"
        "def f() -> None:\n    from messenger import presence\n"
    )

    assert _imported_apps(tree) & KONTOR_APPS == {"messenger"}
