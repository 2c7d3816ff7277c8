"""The archive's search index: each version's conversation title as captured,
an index of the versions with attachments, and on PostgreSQL the full-text
document with a GIN index.

The document is a stored generated column, ``search_document`` =
``to_tsvector('simple', body || ' ' || file_text)``, computed once when a row
is written, rather than an index over the expression: a phrase query must
recheck every candidate row against its positions, and a plan that walks the
rows newest first tests each one, and recomputing the vector for each (the
text of attachments included) cost a hundred times more than reading it.
``compliance.workspace.search`` filters on the column, so the GIN index
serves it (a PostgreSQL test reads the plan). The column is not a field of
the Django model: SQLite has no text-search vector, and searches there
without an index (every word ``LIKE``), which is fine at the embedded
default's scale.

Records archived before this migration are indexed by
``manage.py reindex_archive``.
"""

from django.apps.registry import Apps
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

TABLE = "compliance_archivedmessage"
COLUMN = "search_document"
INDEX = "compliance_archived_fts"
DOCUMENT = "to_tsvector('simple'::regconfig, body || ' ' || file_text)"


def add_document(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE {TABLE} ADD COLUMN {COLUMN} tsvector GENERATED ALWAYS AS ({DOCUMENT}) STORED"
        )
        schema_editor.execute(f"CREATE INDEX {INDEX} ON {TABLE} USING GIN ({COLUMN})")


def drop_document(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")
        schema_editor.execute(f"ALTER TABLE {TABLE} DROP COLUMN IF EXISTS {COLUMN}")


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0006_offboarding_audit_kinds"),
    ]

    operations = [
        migrations.AddField(
            model_name="archivedmessage",
            name="conversation_title",
            field=models.CharField(
                blank=True,
                help_text="The conversation's name (or its members) as captured.",
                max_length=300,
            ),
        ),
        migrations.AddIndex(
            model_name="archivedmessage",
            index=models.Index(
                condition=models.Q(("has_files", True)),
                fields=["at", "id"],
                name="compliance_archived_files_at",
            ),
        ),
        migrations.RunPython(add_document, drop_document),
    ]
