"""hr sits above the domain apps and writes none of their tables: accounts,
messenger, compliance and archive change their own rows through their
services (docs: DESIGN.md, the app table). Scanned in hr's code."""

import ast
from pathlib import Path

from django.apps import apps

ROOT = Path(__file__).resolve().parents[2]
WRITES = {
    "create",
    "bulk_create",
    "get_or_create",
    "update_or_create",
    "update",
    "bulk_update",
    "delete",
    "save",
    "raw",
}


def _model_of(node: ast.AST) -> str | None:
    """The name a call chain starts from: ``Model.objects.filter(...).update()`` → Model."""
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Name):
            return node.id
        else:
            return None


def foreign_writes(source: str, path: str) -> list[str]:
    """Writes through the manager of a model that is not hr's."""
    own = {model.__name__ for model in apps.get_app_config("hr").get_models()}
    others = {model.__name__ for model in apps.get_models()} - own
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            model = _model_of(node.func.value)
            if node.func.attr in WRITES and model in others and "objects" in ast.unparse(node.func):
                found.append(f"{path}:{node.lineno}: {model}.{node.func.attr}")
    return found


def test_hr_writes_no_other_apps_table() -> None:
    sources = [p for p in sorted((ROOT / "hr").rglob("*.py")) if "migrations" not in p.parts]
    assert len(sources) > 5

    problems = [p for path in sources for p in foreign_writes(path.read_text(), str(path.relative_to(ROOT)))]

    assert problems == []


def test_the_scan_sees_a_write_to_another_apps_table() -> None:
    careless = """
def close(user):
    User.objects.filter(pk=user.pk).update(is_active=False)
    AuditEvent.objects.create(kind="offboarded")
    OffboardingReport.objects.create(user=user)
"""
    assert foreign_writes(careless, "hr/services.py") == [
        "hr/services.py:3: User.update",
        "hr/services.py:4: AuditEvent.create",
    ]
