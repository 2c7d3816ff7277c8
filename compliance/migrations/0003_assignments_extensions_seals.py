"""Policy assignments, retention extensions and seals; their guards.

Extensions and seals are append-only like records (triggers refuse UPDATE,
DELETE and, on PostgreSQL, TRUNCATE of a table holding rows, ENABLE ALWAYS).
A record's content may now be deleted only when its own retention and every
extension of it have ended and no legal hold covers it.
"""

from importlib import import_module

import django.db.models.deletion
import django.db.models.functions.datetime
from django.apps.registry import Apps
from django.conf import settings
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

HELD = import_module("compliance.migrations.0002_policies_and_guards").HELD


NEW_TABLES = ("compliance_retentionextension", "compliance_seal")
# Content is still kept while any extension of its record runs.
EXTENDED = "EXISTS (SELECT 1 FROM compliance_retentionextension e WHERE e.record_id = r.id AND e.retain_until >= {today})"


def create_guards(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    execute = schema_editor.execute
    if schema_editor.connection.vendor == "postgresql":
        for table in NEW_TABLES:
            for suffix, when, function, each in (
                ("no_update", "UPDATE", "compliance_refuse", "ROW"),
                ("no_delete", "DELETE", "compliance_refuse", "ROW"),
                ("no_truncate", "TRUNCATE", "compliance_refuse_truncate", "STATEMENT"),
            ):
                execute(
                    f"CREATE TRIGGER {table}_{suffix} BEFORE {when} ON {table} "
                    f"FOR EACH {each} EXECUTE FUNCTION {function}()"
                )
                execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_{suffix}")
        execute(
            """
CREATE OR REPLACE FUNCTION compliance_content_delete_check() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM compliance_retentionrecord r WHERE r.id = OLD.record_id
               AND (r.retain_until >= CURRENT_DATE OR """
            + HELD
            + " OR "
            + EXTENDED.format(today="CURRENT_DATE")
            + """)) THEN
        RAISE EXCEPTION 'record content cannot be deleted before its retention ends or while a legal hold covers it'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;
""",
            params=None,
        )
    elif schema_editor.connection.vendor == "sqlite":
        for table in NEW_TABLES:
            for suffix, when in (("no_update", "UPDATE"), ("no_delete", "DELETE")):
                execute(
                    f"CREATE TRIGGER {table}_{suffix} BEFORE {when} ON {table} BEGIN "
                    f"SELECT RAISE(ABORT, 'the compliance archive refuses {when} on {table}'); END"
                )
        extended = EXTENDED.format(today="date('now')")
        execute("DROP TRIGGER IF EXISTS compliance_recordcontent_no_early_delete")
        execute(
            "CREATE TRIGGER compliance_recordcontent_no_early_delete BEFORE DELETE ON compliance_recordcontent "
            "WHEN EXISTS (SELECT 1 FROM compliance_retentionrecord r WHERE r.id = OLD.record_id "
            f"AND (r.retain_until >= date('now') OR {HELD} OR {extended})) "
            "BEGIN SELECT RAISE(ABORT, 'record content cannot be deleted before its retention ends "
            "or while a legal hold covers it'); END"
        )


def drop_guards(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    vendor = schema_editor.connection.vendor
    for table in NEW_TABLES:
        for suffix in ("no_update", "no_truncate", "no_delete"):
            on = f" ON {table}" if vendor == "postgresql" else ""
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_{suffix}{on}")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_erasure"),
        ("compliance", "0002_policies_and_guards"),
        ("messenger", "0003_attachments"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Seal",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("seq", models.PositiveIntegerField(unique=True)),
                ("previous_hash", models.CharField(max_length=64, unique=True)),
                ("sha256", models.CharField(max_length=64, unique=True)),
                ("hmac", models.CharField(blank=True, max_length=64)),
                ("canonical_json", models.TextField()),
                ("chains", models.PositiveIntegerField()),
                ("tsa_url", models.CharField(blank=True, max_length=500)),
                (
                    "tsa_token",
                    models.TextField(blank=True, help_text="The RFC 3161 timestamp token, base64 DER."),
                ),
                ("storage_name", models.CharField(blank=True, max_length=300)),
                ("created_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
            ],
            options={
                "ordering": ["seq"],
            },
        ),
        migrations.AddField(
            model_name="retentionpolicy",
            name="purge_live",
            field=models.BooleanField(
                default=False,
                help_text="When a record's retention ends, also delete the live messages and files it covered.",
            ),
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
                ],
                max_length=30,
            ),
        ),
        migrations.CreateModel(
            name="RetentionExtension",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("retain_until", models.DateField()),
                ("reason", models.TextField()),
                ("created_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
                (
                    "actor",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "record",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="extensions",
                        to="compliance.retentionrecord",
                    ),
                ),
            ],
            options={
                "abstract": False,
            },
        ),
        migrations.CreateModel(
            name="PolicyAssignment",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("assigned_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
                (
                    "assigned_by",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "conversation",
                    models.OneToOneField(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="messenger.conversation",
                    ),
                ),
                (
                    "department",
                    models.OneToOneField(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="accounts.department",
                    ),
                ),
                (
                    "policy",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="assignments",
                        to="compliance.retentionpolicy",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("conversation__isnull", True), ("department__isnull", False)),
                            models.Q(("conversation__isnull", False), ("department__isnull", True)),
                            _connector="OR",
                        ),
                        name="compliance_assignment_one_scope",
                    )
                ],
            },
        ),
        migrations.RunPython(create_guards, drop_guards),
    ]
