"""Full-text index over the text extracted from stored files (PostgreSQL only).

Message search finds a message by words inside its attachments; the GIN index
serves that on PostgreSQL. SQLite searches without it.
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def forwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX archive_storedfile_text_fts ON archive_storedfile "
            # The same expression Django's SearchVector("text", config="simple")
            # produces, so the planner can use the index for the search filter.
            "USING GIN (to_tsvector('simple'::regconfig, COALESCE(text, '')))"
        )


def backwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS archive_storedfile_text_fts")


class Migration(migrations.Migration):
    dependencies = [("archive", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
