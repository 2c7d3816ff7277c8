"""The auditor workspace: cases, the archive's search index, export jobs, and
where each audit event came from (case, address, browser).

On SQLite, adding a NOT NULL column rebuilds the audit log's table, which
drops its triggers; they are made again at the end, as migration 0002 made them.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
from django.apps.registry import Apps
from django.conf import settings
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def restore_audit_guards(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor != "sqlite":
        return  # PostgreSQL adds the columns in place; its triggers stay
    table = "compliance_auditevent"
    for suffix, when in (("no_update", "UPDATE"), ("no_delete", "DELETE")):
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_{suffix}")
        schema_editor.execute(
            f"CREATE TRIGGER {table}_{suffix} BEFORE {when} ON {table} BEGIN "
            f"SELECT RAISE(ABORT, 'the compliance archive refuses {when} on {table}'); END"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0004_recording_notice"),
        ("messenger", "0003_attachments"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="ip",
            field=models.GenericIPAddressField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="user_agent",
            field=models.CharField(blank=True, max_length=300),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("snapshot", "Snapshot"),
                    ("policy_changed", "Policy changed"),
                    ("hold_set", "Legal hold set"),
                    ("hold_released", "Legal hold released"),
                    ("record_purged", "Record purged"),
                    ("verified", "Archive verified"),
                    ("retention_extended", "Retention extended"),
                    ("sealed", "Chain heads sealed"),
                    ("live_purged", "Live messages and files deleted after retention"),
                    ("processing_restricted", "Processing restricted (erasure request)"),
                    ("person_erased", "Person erased after retention"),
                    ("case_opened", "Case opened"),
                    ("case_approved", "Case approved (four eyes)"),
                    ("case_closed", "Case closed"),
                    ("searched", "Archive searched"),
                    ("viewed", "Archive viewed"),
                    ("export_requested", "Export requested"),
                    ("export_downloaded", "Export downloaded"),
                    ("file_downloaded", "Archived file downloaded"),
                    ("audit_log_viewed", "Audit log viewed"),
                    ("audit_log_exported", "Audit log exported"),
                ],
                max_length=30,
            ),
        ),
        migrations.CreateModel(
            name="Case",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=200)),
                (
                    "legal_basis",
                    models.TextField(help_text="Why this case may look into the archive: the legal basis."),
                ),
                (
                    "scope",
                    models.TextField(
                        blank=True, help_text="What it covers: people, conversations, a period."
                    ),
                ),
                ("opened_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
                ("approved_at", models.DateTimeField(blank=True, null=True)),
                ("closed_at", models.DateTimeField(blank=True, null=True)),
                (
                    "approved_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "closed_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "opened_by",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-opened_at", "-pk"],
            },
        ),
        migrations.AddField(
            model_name="auditevent",
            name="case",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="audit_events",
                to="compliance.case",
            ),
        ),
        migrations.CreateModel(
            name="Export",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("requested_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
                (
                    "parameters",
                    models.JSONField(
                        default=dict, help_text="What to export: a search or a conversation range."
                    ),
                ),
                ("formats", models.JSONField(default=list)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("queued", "Queued"),
                            ("running", "Running"),
                            ("done", "Ready"),
                            ("failed", "Failed"),
                        ],
                        default="queued",
                        max_length=10,
                    ),
                ),
                ("progress", models.PositiveSmallIntegerField(default=0, help_text="Percent done.")),
                ("items", models.PositiveIntegerField(default=0)),
                ("error", models.TextField(blank=True)),
                ("file_key", models.CharField(blank=True, max_length=300)),
                ("size", models.BigIntegerField(blank=True, null=True)),
                ("sha256", models.CharField(blank=True, max_length=64)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                (
                    "case",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="exports",
                        to="compliance.case",
                    ),
                ),
                (
                    "requested_by",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-requested_at", "-pk"],
            },
        ),
        migrations.CreateModel(
            name="ArchivedMessage",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "event_id",
                    models.BigIntegerField(help_text="The journal event that carried this version."),
                ),
                (
                    "message_id",
                    models.BigIntegerField(help_text="The live message's id (the message may be gone)."),
                ),
                ("message_seq", models.BigIntegerField()),
                ("version", models.PositiveIntegerField()),
                (
                    "kind",
                    models.CharField(
                        help_text="The revision's kind: created, edited or deleted.", max_length=20
                    ),
                ),
                ("author_name", models.CharField(help_text="As captured in the record.", max_length=200)),
                ("author_department", models.CharField(blank=True, max_length=120)),
                ("body", models.TextField(blank=True)),
                (
                    "file_text",
                    models.TextField(blank=True, help_text="Text of the attached files at capture."),
                ),
                ("files", models.JSONField(default=list)),
                ("has_files", models.BooleanField(default=False)),
                (
                    "file_types",
                    models.CharField(blank=True, help_text="Space-separated content types.", max_length=500),
                ),
                ("at", models.DateTimeField(help_text="When this version was made (database clock).")),
                (
                    "author",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "conversation",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="messenger.conversation",
                    ),
                ),
                (
                    "record",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="compliance.retentionrecord",
                    ),
                ),
            ],
            options={
                "ordering": ["-at", "-id"],
                "indexes": [
                    models.Index(fields=["at", "id"], name="compliance_archived_at"),
                    models.Index(fields=["conversation", "at"], name="compliance_archived_conv_at"),
                    models.Index(fields=["author", "at"], name="compliance_archived_author_at"),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("message_id", "version"), name="compliance_archived_version_unique"
                    )
                ],
            },
        ),
        migrations.RunPython(restore_audit_guards, migrations.RunPython.noop),
    ]
