"""The apps form a one-way stack (../shared/DESIGN.md, "Apps and what each owns"):

    config → hr → compliance → messenger → {archive, accounts}

An app may import only the apps below it; ``archive`` and ``accounts`` are leaves.
The scan reads every module of every app (management commands included,
migrations aside: they are history and name their dependencies themselves) and
finds imports at any depth, in functions too, and model references by string
(``ForeignKey("compliance.LegalHold")``), which tie apps together as firmly as an
import. Imports under ``if TYPE_CHECKING:`` are type hints only and allowed. An
app's templates may load only the tag libraries of the apps it may import.
"""

import ast
import re
from pathlib import Path

from django.template.backends.django import get_installed_libraries

ROOT = Path(__file__).resolve().parents[1]

MAY_IMPORT: dict[str, frozenset[str]] = {
    "config": frozenset({"hr", "compliance", "messenger", "archive", "accounts"}),
    "hr": frozenset({"compliance", "messenger", "archive", "accounts"}),
    "compliance": frozenset({"messenger", "archive", "accounts"}),
    "messenger": frozenset({"archive", "accounts"}),
    "archive": frozenset(),
    "accounts": frozenset(),
}
APPS = frozenset(MAY_IMPORT)
MODEL_REFERENCE = re.compile(rf"^({'|'.join(sorted(APPS))})\.[A-Z]\w*$")
RELATION_FIELDS = {"ForeignKey", "OneToOneField", "ManyToManyField"}


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    """Ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = (
                test.id
                if isinstance(test, ast.Name)
                else test.attr
                if isinstance(test, ast.Attribute)
                else ""
            )
            if name == "TYPE_CHECKING":
                for child in node.body:
                    inside.update(id(n) for n in ast.walk(child))
    return inside


def _imported_apps(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name.split(".")[0] for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module.split(".")[0]]
    return []


def _referenced_app(node: ast.AST) -> str | None:
    """The app of a model named by string in a relation field."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if name not in RELATION_FIELDS:
        return None
    target = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "to"), None)
    if (
        isinstance(target, ast.Constant)
        and isinstance(target.value, str)
        and MODEL_REFERENCE.match(target.value)
    ):
        return target.value.split(".")[0]
    return None


def violations(source: str, path: str) -> list[str]:
    """Every place in one module where its app reaches up or sideways."""
    app = path.split("/")[0]
    allowed = MAY_IMPORT[app] | {app}
    tree = ast.parse(source)
    hints_only = _type_checking_blocks(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in hints_only:
            continue
        line = getattr(node, "lineno", 0)
        for imported in _imported_apps(node):
            if imported in APPS and imported not in allowed:
                found.append(f"{path}:{line}: {app} imports {imported}")
        referenced = _referenced_app(node)
        if referenced is not None and referenced not in allowed:
            found.append(f"{path}:{line}: {app} points at a model of {referenced}")
    return found


def _sources() -> list[Path]:
    return [
        path
        for app in sorted(APPS)
        for path in sorted((ROOT / app).rglob("*.py"))
        if "migrations" not in path.relative_to(ROOT).parts
    ]


def test_the_apps_form_a_one_way_stack() -> None:
    sources = _sources()
    assert {path.relative_to(ROOT).parts[0] for path in sources} == APPS  # every app is read
    assert len(sources) > 100
    problems = [
        problem
        for path in sources
        for problem in violations(path.read_text(), path.relative_to(ROOT).as_posix())
    ]
    assert problems == []


TEMPLATE_LOAD = re.compile(r"{%\s*load\s+([^%]+?)\s*%}")


def template_violations(source: str, path: str, libraries: dict[str, str]) -> list[str]:
    """Tag libraries of apps above or beside the template's own app."""
    app = path.split("/")[0]
    allowed = MAY_IMPORT[app] | {app}
    found = []
    for match in TEMPLATE_LOAD.finditer(source):
        names = match.group(1).split()
        if "from" in names:  # {% load tag from library %}
            names = names[names.index("from") + 1 :]
        for name in names:
            owner = libraries.get(name, "").split(".")[0]
            if owner in APPS and owner not in allowed:
                line = source.count("\n", 0, match.start()) + 1
                found.append(f"{path}:{line}: {app} loads {owner}'s tags {name!r}")
    return found


def test_templates_load_only_the_tags_of_apps_below() -> None:
    libraries = get_installed_libraries()
    templates = sorted(path for app in APPS for path in (ROOT / app).glob("templates/**/*") if path.is_file())
    assert len(templates) > 50
    problems = [
        problem
        for path in templates
        for problem in template_violations(path.read_text(), path.relative_to(ROOT).as_posix(), libraries)
    ]
    assert problems == []
    # A careless page would be caught.
    assert template_violations(
        "{% load static %}\n{% load audit_detail chat %}", "messenger/templates/x.html", libraries
    ) == ["messenger/templates/x.html:2: messenger loads compliance's tags 'audit_detail'"]


def test_the_scan_catches_a_back_import() -> None:
    careless = """
from typing import TYPE_CHECKING
from django.db import models
from messenger.models import Conversation
import compliance.lifecycle
if TYPE_CHECKING:
    from hr.models import OffboardingReport

class Note(models.Model):
    hold = models.ForeignKey("compliance.LegalHold", on_delete=models.PROTECT)
    owner = models.ForeignKey(to="accounts.User", on_delete=models.PROTECT)

def later():
    from hr import services
"""
    problems = violations(careless, "accounts/notes.py")

    assert sorted(problems) == [
        "accounts/notes.py:10: accounts points at a model of compliance",
        "accounts/notes.py:14: accounts imports hr",
        "accounts/notes.py:4: accounts imports messenger",
        "accounts/notes.py:5: accounts imports compliance",
    ]
    # Downward imports are the stack working as meant.
    assert (
        violations("from accounts.models import User\nfrom archive import selectors\n", "messenger/x.py")
        == []
    )
    assert violations("from hr import services\n", "config/urls.py") == []
