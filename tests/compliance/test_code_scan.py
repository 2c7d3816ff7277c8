"""C19: no command, admin action or API edits records. The code is scanned for
writes to the archive's tables: each is appended to by the one module that owns
it, nothing anywhere updates or deletes them (the purge's content delete
aside), and the audit log is appended to only through its one writer,
``compliance.audit.audit_event_record``."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "archive", "compliance", "config", "hr", "messenger", "scripts", "bench")

# The archive's tables and the one module that appends to each (append-only).
SNAPSHOTS = "compliance/services.py"  # records, their content and people, the cursor
LIFECYCLE = "compliance/lifecycle.py"  # purge entries (and the purge's content delete)
POLICIES = "compliance/policies.py"  # retention extensions
SEALING = "compliance/sealing.py"  # seals
WRITERS = {
    "RetentionRecord": {SNAPSHOTS},
    "RecordContent": {SNAPSHOTS},
    "RecordPerson": {SNAPSHOTS},
    "SnapshotCursor": {SNAPSHOTS},
    "PurgeEntry": {LIFECYCLE},
    "RetentionExtension": {POLICIES},
    "Seal": {SEALING},
}
RECORD_MODELS = set(WRITERS)
# The audit log: appended to only by its one writer; never changed.
AUDIT_MODEL = "AuditEvent"
AUDIT_WRITER = "compliance/audit.py"
APPENDS = {"create", "bulk_create"}
CHANGES = {"update", "bulk_update", "delete", "update_or_create", "get_or_create", "save", "raw"}
# The only changes allowed: the purge deletes expired content (the database
# re-checks it); a snapshot takes and moves its conversation's cursor.
ALLOWED_CHANGES = {
    (LIFECYCLE, "RecordContent", "delete"),
    (SNAPSHOTS, "SnapshotCursor", "get_or_create"),
    (SNAPSHOTS, "SnapshotCursor", "update"),
}
RAW_WRITE = re.compile(r"\b(UPDATE|DELETE\s+FROM|INSERT\s+INTO|TRUNCATE)\s+(TABLE\s+)?\"?compliance_", re.I)


def _model_of(node: ast.AST) -> str | None:
    """The model a call chain starts from: ``Model.objects.filter(...).update()``
    and ``models.Model.objects.create()`` → Model; ``instance.save()`` → instance."""
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            if node.attr == "objects":
                inner = node.value
                if isinstance(inner, ast.Attribute):
                    return inner.attr
                if isinstance(inner, ast.Name):
                    return inner.id
            node = node.value
        elif isinstance(node, ast.Name):
            return node.id
        else:
            return None


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Names a module binds to the archive's models (``import AuditEvent as Log``)."""
    watched = RECORD_MODELS | {AUDIT_MODEL}
    return {
        alias.asname: alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.asname and alias.name in watched
    }


def violations(source: str, path: str) -> list[str]:
    found = []
    tree = ast.parse(source)
    aliases = _aliases(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method, model = node.func.attr, _model_of(node.func.value)
            model = aliases.get(model or "", model)
            where = f"{path}:{node.lineno}"
            if model in WRITERS:
                if method in APPENDS and path not in WRITERS[model]:
                    found.append(f"{where}: {model}.{method} outside {', '.join(sorted(WRITERS[model]))}")
                if method in CHANGES and (path, model, method) not in ALLOWED_CHANGES:
                    found.append(f"{where}: {model}.{method} changes the archive")
            if model == AUDIT_MODEL:
                if method in APPENDS and path != AUDIT_WRITER:
                    found.append(f"{where}: {model}.{method} outside {AUDIT_WRITER} (use audit_event_record)")
                if method in CHANGES:
                    found.append(f"{where}: {model}.{method} changes the audit log")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute):
            called = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
            if aliases.get(called, called) == AUDIT_MODEL and path != AUDIT_WRITER:
                found.append(f"{path}:{node.lineno}: {AUDIT_MODEL}(...) built outside {AUDIT_WRITER}")
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


def _problems() -> list[str]:
    sources = _sources()
    assert len(sources) > 40  # the scan really reads the project
    return [
        problem for path in sources for problem in violations(path.read_text(), str(path.relative_to(ROOT)))
    ]


def test_nothing_outside_the_archive_services_writes_records() -> None:
    assert [problem for problem in _problems() if AUDIT_MODEL not in problem] == []


def test_audit_events_are_written_only_by_audit_event_record() -> None:
    """Every audit event goes through ``compliance.audit.audit_event_record``;
    the offenders are listed by file and line."""
    assert [problem for problem in _problems() if AUDIT_MODEL in problem] == []


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
    assert any("RetentionRecord.create outside compliance/services.py" in p for p in problems)


def test_the_audit_log_is_appended_to_only_by_its_one_writer() -> None:
    sideways = """
from compliance import models
from compliance.models import AuditEvent, AuditEvent as Log, PurgeEntry
def log(kind, actor):
    AuditEvent.objects.create(kind=kind, actor=actor)
    Log.objects.bulk_create([Log(kind=kind)])
    models.AuditEvent.objects.create(kind=kind)
    PurgeEntry.objects.create(record=None, sha256="")
"""
    problems = violations(sideways, "hr/offboarding.py")

    assert sorted(problem.split(": ", 1)[1] for problem in problems) == [
        "AuditEvent(...) built outside compliance/audit.py",
        "AuditEvent.bulk_create outside compliance/audit.py (use audit_event_record)",
        "AuditEvent.create outside compliance/audit.py (use audit_event_record)",
        "AuditEvent.create outside compliance/audit.py (use audit_event_record)",
        "PurgeEntry.create outside compliance/lifecycle.py",
    ]
    assert (
        violations(sideways.replace('PurgeEntry.objects.create(record=None, sha256="")', ""), AUDIT_WRITER)
        == []
    )


def test_each_archive_table_has_its_writer_on_disk() -> None:
    """The scan's map follows the modules: a writer that moved leaves no stale entry."""
    for model, writers in WRITERS.items():
        for writer in writers:
            source = (ROOT / writer).read_text()
            assert f"{model}.objects" in source, (model, writer)
    assert "AuditEvent.objects.create" in (ROOT / AUDIT_WRITER).read_text()
