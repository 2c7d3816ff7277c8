"""A system check that fails loudly when an offboarding report guard is missing or off."""

from importlib import import_module
from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register
from django.db import connections
from django.db.migrations.recorder import MigrationRecorder

_MIGRATION = "0006_offboarding"


@register(Tags.database)
def report_guards(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    migration = import_module(f"accounts.migrations.{_MIGRATION}")
    problems: list[CheckMessage] = []
    for alias in kwargs.get("databases") or []:
        connection = connections[alias]
        recorder = MigrationRecorder(connection)
        if not recorder.has_table() or ("accounts", _MIGRATION) not in recorder.applied_migrations():
            continue  # before migrating there is nothing to guard yet
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT tgname, tgenabled FROM pg_trigger WHERE tgname LIKE 'accounts_%%'")
                found = dict(cursor.fetchall())
                expected = migration.TRIGGERS + migration.PG_ONLY_TRIGGERS
            elif connection.vendor == "sqlite":
                cursor.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'accounts_%'"
                )
                found = {name: "A" for (name,) in cursor.fetchall()}
                expected = migration.TRIGGERS
            else:
                continue
        for name in expected:
            if name not in found:
                problems.append(Error(f"The offboarding report guard {name} is missing.", id="accounts.E001"))
            elif found[name] != "A":
                problems.append(
                    Error(
                        f"The offboarding report guard {name} is not ENABLE ALWAYS (state {found[name]!r}).",
                        hint=f"ALTER TABLE accounts_offboardingreport ENABLE ALWAYS TRIGGER {name}",
                        id="accounts.E002",
                    )
                )
    return problems
