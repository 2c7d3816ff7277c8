"""The journal is append-only, enforced by the database; full-text search index.

Triggers refuse every UPDATE of a journal row (events and message revisions),
on SQLite and on PostgreSQL (``ENABLE ALWAYS``, so even a replica-role session
cannot skip them). Deleting stays possible only for the compliance purge and
for test teardown; no application code deletes journal rows.

On PostgreSQL a GIN index over the message bodies' text-search vectors serves
search; SQLite searches without it.
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

TABLES = ("messenger_event", "messenger_messagerevision")

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION messenger_journal_refuse_update() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the messenger journal is append-only: % rows cannot be changed', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    vendor = schema_editor.connection.vendor
    for table in TABLES:
        if vendor == "postgresql":
            schema_editor.execute(PG_FUNCTION, params=None)
            schema_editor.execute(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION messenger_journal_refuse_update()"
            )
            schema_editor.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_update")
        elif vendor == "sqlite":
            schema_editor.execute(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} BEGIN "
                f"SELECT RAISE(ABORT, 'the messenger journal is append-only: {table} rows cannot be changed'); "
                "END"
            )
    if vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX messenger_message_body_fts ON messenger_message "
            # The same expression Django's SearchVector("body", config="simple")
            # produces, so the planner can use the index for the search filter.
            "USING GIN (to_tsvector('simple'::regconfig, COALESCE(body, '')))"
        )


def backwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    vendor = schema_editor.connection.vendor
    for table in TABLES:
        schema_editor.execute(
            f"DROP TRIGGER IF EXISTS {table}_no_update" + (f" ON {table}" if vendor == "postgresql" else "")
        )
    if vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS messenger_message_body_fts")
        schema_editor.execute("DROP FUNCTION IF EXISTS messenger_journal_refuse_update()")


class Migration(migrations.Migration):
    dependencies = [("messenger", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
