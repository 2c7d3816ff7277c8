"""A system check that fails loudly when an archive guard is missing or off."""

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register
from django.db import connections
from django.db.migrations.recorder import MigrationRecorder

_APPEND_ONLY = ("retentionrecord", "recordperson", "purgeentry", "auditevent", "retentionextension", "seal")
EXPECTED = [
    *(f"compliance_{t}_no_update" for t in (*_APPEND_ONLY, "recordcontent")),
    *(f"compliance_{t}_no_delete" for t in _APPEND_ONLY),
    "compliance_recordcontent_no_early_delete",
]
PG_ONLY = [f"compliance_{t}_no_truncate" for t in (*_APPEND_ONLY, "recordcontent")]


@register(Tags.database)
def archive_guards(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    for alias in kwargs.get("databases") or []:
        connection = connections[alias]
        recorder = MigrationRecorder(connection)
        if (
            not recorder.has_table()
            or ("compliance", "0003_assignments_extensions_seals") not in recorder.applied_migrations()
        ):
            continue  # before migrating there is nothing to guard yet
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT tgname, tgenabled FROM pg_trigger WHERE tgname LIKE 'compliance_%%'")
                found = dict(cursor.fetchall())
                expected = EXPECTED + PG_ONLY
            elif connection.vendor == "sqlite":
                cursor.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'compliance_%'"
                )
                found = {name: "A" for (name,) in cursor.fetchall()}
                expected = EXPECTED
            else:
                continue
        for name in expected:
            if name not in found:
                problems.append(Error(f"The archive guard {name} is missing.", id="compliance.E001"))
            elif found[name] != "A":
                problems.append(
                    Error(
                        f"The archive guard {name} is not ENABLE ALWAYS (state {found[name]!r}).",
                        hint=f"ALTER TABLE … ENABLE ALWAYS TRIGGER {name}",
                        id="compliance.E002",
                    )
                )
    return problems
