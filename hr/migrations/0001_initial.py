"""Offboarding moves here from ``accounts`` (issue 17), without touching a row.

``OffboardingReport`` and ``ScheduledOffboarding`` enter hr's model state on
the tables accounts made (``db_table``), with the same constraint and index
names: the database operations are empty, so the tables, their rows and the
report's guards (the triggers of ``accounts`` migration 0006) stay as they are.
Their content types move too (``app_label`` accounts -> hr), so the
permissions HR's group holds on them (view reports, see and cancel scheduled
offboardings) are the same rows, now named ``hr.*``.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
from django.apps.registry import Apps
from django.conf import settings
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

MOVED = ("offboardingreport", "scheduledoffboarding")


def _relabel(apps: Apps, schema_editor: BaseDatabaseSchemaEditor, old: str, new: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in MOVED:
        if ContentType.objects.using(db).filter(app_label=new, model=model).exists():
            continue  # made already (e.g. by a flush): the old one, if any, stays stale
        ContentType.objects.using(db).filter(app_label=old, model=model).update(app_label=new)


def content_types_to_hr(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _relabel(apps, schema_editor, "accounts", "hr")


def content_types_to_accounts(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _relabel(apps, schema_editor, "hr", "accounts")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        # Accounts lets go of the two models first (its 0009, state only).
        ("accounts", "0009_offboarding_to_hr"),
        # LegalHold, which a report may name.
        ("compliance", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="OffboardingReport",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("offboarded_at", models.DateTimeField()),
                        ("conversations", models.PositiveIntegerField()),
                        ("messages", models.PositiveIntegerField()),
                        ("files", models.PositiveIntegerField()),
                        (
                            "records",
                            models.PositiveIntegerField(
                                help_text="Retention records of their conversations."
                            ),
                        ),
                        ("canonical_json", models.TextField()),
                        ("sha256", models.CharField(max_length=64, unique=True)),
                        (
                            "created_at",
                            models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
                        ),
                        (
                            "hold",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="compliance.legalhold",
                            ),
                        ),
                        (
                            "offboarded_by",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "successor",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="offboarding_reports",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "accounts_offboardingreport",
                        "ordering": ["-offboarded_at", "-pk"],
                    },
                ),
                migrations.CreateModel(
                    name="ScheduledOffboarding",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("effective_at", models.DateTimeField(help_text="When the account is closed.")),
                        (
                            "hold_reason",
                            models.TextField(
                                blank=True,
                                help_text="When given, a legal hold on the leaver as custodian is set with this reason.",
                            ),
                        ),
                        (
                            "requested_at",
                            models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
                        ),
                        ("done_at", models.DateTimeField(blank=True, null=True)),
                        ("cancelled_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "error",
                            models.TextField(
                                blank=True, help_text="Why the last attempt failed (it is tried again)."
                            ),
                        ),
                        (
                            "cancelled_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "report",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="hr.offboardingreport",
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
                        (
                            "successor",
                            models.ForeignKey(
                                blank=True,
                                help_text="Takes over the leaver's groups and channels.",
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="scheduled_offboardings",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "accounts_scheduledoffboarding",
                        "ordering": ["effective_at", "pk"],
                    },
                ),
                migrations.AddConstraint(
                    model_name="offboardingreport",
                    constraint=models.UniqueConstraint(
                        fields=("user", "offboarded_at"), name="accounts_one_report_per_offboarding"
                    ),
                ),
                migrations.AddIndex(
                    model_name="scheduledoffboarding",
                    index=models.Index(
                        condition=models.Q(("cancelled_at__isnull", True), ("done_at__isnull", True)),
                        fields=["effective_at"],
                        name="accounts_offboarding_due_idx",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="scheduledoffboarding",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(("cancelled_at__isnull", True), ("done_at__isnull", True)),
                        fields=("user",),
                        name="accounts_one_pending_offboarding",
                    ),
                ),
            ],
        ),
        migrations.RunPython(content_types_to_hr, content_types_to_accounts),
    ]
