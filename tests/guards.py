"""Emptying a test database whose guarded tables refuse it.

A transactional test (a browser journey, a websocket test) commits retention
records, audit events and offboarding reports; their triggers refuse the DELETE
or TRUNCATE of pytest-django's flush. ``flush_guarded_database`` does what the
database's owner would: it lifts every trigger, empties the database and puts
each trigger back exactly as it was (``ENABLE ALWAYS`` included), whichever
migration made it. A flushed database has lost what migrations put in it, such
as the retention policies: ``ensure_retention_policies`` brings those back.
"""

from importlib import import_module

from django.core.management import call_command
from django.db import connection


def flush_guarded_database() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            sqlite_triggers = cursor.fetchall()
            for name, _ in sqlite_triggers:
                cursor.execute(f'DROP TRIGGER "{name}"')
        elif connection.vendor == "postgresql":
            cursor.execute(
                "SELECT t.tgname, c.relname, pg_get_triggerdef(t.oid), t.tgenabled "
                "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE NOT t.tgisinternal AND n.nspname = current_schema()"
            )
            pg_triggers = cursor.fetchall()
            for name, table, _, _ in pg_triggers:
                cursor.execute(f'DROP TRIGGER "{name}" ON "{table}"')
    try:
        call_command("flush", interactive=False, verbosity=0)
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                for _, sql in sqlite_triggers:
                    cursor.execute(sql)
            elif connection.vendor == "postgresql":
                for name, table, definition, enabled in pg_triggers:
                    cursor.execute(definition)
                    if enabled == "A":
                        cursor.execute(f'ALTER TABLE "{table}" ENABLE ALWAYS TRIGGER "{name}"')


def ensure_retention_policies() -> None:
    """The default retention policies, as migration compliance 0002 makes them:
    a flushed test database has none, and archiving needs the default one."""
    from django.apps import apps

    policies = import_module("compliance.migrations.0002_policies_and_guards")
    policies.create_policies(apps, connection.schema_editor())
