"""C19: no command, admin action or API edits records. The code is scanned for
writes to the archive's tables; only the archive's own services may append,
and nothing anywhere updates or deletes them (the purge's content delete aside)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "archive", "compliance", "config", "hr", "messenger", "scripts", "bench")

# The archive's tables, written only by these modules (append-only).
RECORD_MODELS = {
    "RetentionRecord",
    "RecordContent",
    "RecordPerson",
    "PurgeEntry",
    "RetentionExtension",
    "Seal",
    "SnapshotCursor",
}
WRITERS = {
    "compliance/services.py",  # snapshots, purge
    "compliance/policies.py",  # retention extensions
    "compliance/sealing.py",  # seals
}
# The audit log may be appended to from anywhere; never changed.
APPEND_ONLY = {"AuditEvent"}
APPENDS = {"create", "bulk_create"}
CHANGES = {"update", "bulk_update", "delete", "update_or_create", "get_or_create", "save", "raw"}
# The only change allowed: the purge deletes expired content (the database re-checks it).
ALLOWED_CHANGES = {
    ("compliance/services.py", "RecordContent", "delete"),
    ("compliance/services.py", "SnapshotCursor", "get_or_create"),
    ("compliance/services.py", "SnapshotCursor", "update"),
}
RAW_WRITE = re.compile(r"\b(UPDATE|DELETE\s+FROM|INSERT\s+INTO|TRUNCATE)\s+(TABLE\s+)?\"?compliance_", re.I)


def _model_of(node: ast.AST) -> str | None:
    """The model a call chain starts from: ``Model.objects.filter(...).update()`` → Model."""
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Name):
            return node.id
        else:
            return None


def violations(source: str, path: str) -> list[str]:
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method, model = node.func.attr, _model_of(node.func.value)
            where = f"{path}:{node.lineno}"
            if model in RECORD_MODELS:
                if method in APPENDS and path not in WRITERS:
                    found.append(f"{where}: {model}.{method} outside the archive's services")
                if method in CHANGES and (path, model, method) not in ALLOWED_CHANGES:
                    found.append(f"{where}: {model}.{method} changes the archive")
            if model in APPEND_ONLY and method in CHANGES:
                found.append(f"{where}: {model}.{method} changes the audit log")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and RAW_WRITE.search(node.value):
            found.append(f"{path}:{node.lineno}: raw SQL writes to an archive table")
    return found


def _sources() -> list[Path]:
    return [
        path
        for app in APPS
        for path in sorted((ROOT / app).rglob("*.py"))
        if "migrations" not in path.parts and ".venv" not in path.parts
    ]


def test_nothing_outside_the_archive_services_writes_records() -> None:
    sources = _sources()
    assert len(sources) > 40  # the scan really reads the project
    problems = [
        problem for path in sources for problem in violations(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert problems == []


def test_the_scan_catches_writes_a_careless_change_could_add() -> None:
    careless = """
from compliance.models import AuditEvent, RetentionRecord, RecordContent
def fix_typo(record_id):
    RetentionRecord.objects.filter(pk=record_id).update(retain_until="2020-01-01")
    RecordContent.objects.get(record_id=record_id).save()
    AuditEvent.objects.filter(kind="x").delete()
    cursor.execute("UPDATE compliance_recordcontent SET canonical_json = ''")
    RetentionRecord.objects.create(seq=1)
"""
    problems = violations(careless, "accounts/admin.py")

    assert len(problems) == 5
    assert any("RetentionRecord.update" in p for p in problems)
    assert any("raw SQL" in p for p in problems)
    assert any("AuditEvent.delete" in p for p in problems)
    assert any("RetentionRecord.create outside" in p for p in problems)
