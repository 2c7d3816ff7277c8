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


def guard_problems(
    databases: Any,
    *,
    migration: tuple[str, str],
    prefix: str,
    expected: list[str],
    pg_only: list[str],
    what: str,
    check_id: str,
) -> list[CheckMessage]:
    """Errors for every trigger of ``expected`` (and ``pg_only`` on PostgreSQL)
    that is missing, or on PostgreSQL not ``ENABLE ALWAYS``, once ``migration``
    (app label, name) has made them. Used by each app whose rows are guarded."""
    problems: list[CheckMessage] = []
    for alias in databases or []:
        connection = connections[alias]
        recorder = MigrationRecorder(connection)
        if not recorder.has_table() or migration not in recorder.applied_migrations():
            continue  # before migrating there is nothing to guard yet
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    "SELECT tgname, tgenabled FROM pg_trigger WHERE tgname LIKE %s", [f"{prefix}%"]
                )
                found = dict(cursor.fetchall())
                wanted = expected + pg_only
            elif connection.vendor == "sqlite":
                cursor.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE %s", [f"{prefix}%"]
                )
                found = {name: "A" for (name,) in cursor.fetchall()}
                wanted = expected
            else:
                continue
        for name in wanted:
            if name not in found:
                problems.append(Error(f"The {what} {name} is missing.", id=f"{check_id}.E001"))
            elif found[name] != "A":
                problems.append(
                    Error(
                        f"The {what} {name} is not ENABLE ALWAYS (state {found[name]!r}).",
                        hint=f"ALTER TABLE … ENABLE ALWAYS TRIGGER {name}",
                        id=f"{check_id}.E002",
                    )
                )
    return problems


@register(Tags.database)
def archive_guards(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return guard_problems(
        kwargs.get("databases"),
        migration=("compliance", "0003_assignments_extensions_seals"),
        prefix="compliance_",
        expected=EXPECTED,
        pg_only=PG_ONLY,
        what="archive guard",
        check_id="compliance",
    )
