"""Offboarding: who did it, scheduled offboardings, and the immutable report.

HR gets the permissions to offboard, reactivate and restrict processing, to
see reports and to see and cancel scheduled offboardings.

``OffboardingReport`` rows are written once: triggers refuse UPDATE and DELETE
(and, on PostgreSQL, TRUNCATE of a table that holds rows), as for the
compliance archive. On PostgreSQL they are ``ENABLE ALWAYS``, so a
``session_replication_role = replica`` session cannot skip them either.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
from django.apps.registry import Apps
from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

HR = "HR"
# Kept in step with accounts.roles.HR_PERMISSIONS (tests/accounts/test_admin.py checks).
HR_PERMISSIONS = (
    ("accounts", "offboard_user"),
    ("accounts", "restrict_processing"),
    ("accounts", "view_offboardingreport"),
    ("accounts", "view_scheduledoffboarding"),
    ("accounts", "change_scheduledoffboarding"),
)

TABLE = "accounts_offboardingreport"
PG_FUNCTIONS = """
CREATE OR REPLACE FUNCTION accounts_report_refuse() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'an offboarding report cannot be changed or deleted (% on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION accounts_report_refuse_truncate() RETURNS trigger AS $$
DECLARE
    has_rows boolean;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', TG_TABLE_NAME) INTO has_rows;
    IF has_rows THEN
        RAISE EXCEPTION 'offboarding reports refuse TRUNCATE on %', TG_TABLE_NAME
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""
# Trigger names, for the system check (accounts.checks) and the tests.
TRIGGERS = (f"{TABLE}_no_update", f"{TABLE}_no_delete")
PG_ONLY_TRIGGERS = (f"{TABLE}_no_truncate",)


def grant_hr(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Permissions are normally made after migrate; make them now so that the
    # group can hold them on a fresh database.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    hr, _ = Group.objects.get_or_create(name=HR)
    for app_label, codename in HR_PERMISSIONS:
        hr.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def revoke_hr(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group in Group.objects.filter(name=HR):
        for app_label, codename in HR_PERMISSIONS:
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            )


def create_guards(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    vendor = schema_editor.connection.vendor
    execute = schema_editor.execute
    if vendor == "postgresql":
        execute(PG_FUNCTIONS, params=None)
        execute(
            f"CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE} FOR EACH ROW EXECUTE FUNCTION accounts_report_refuse()"
        )
        execute(
            f"CREATE TRIGGER {TABLE}_no_delete BEFORE DELETE ON {TABLE} FOR EACH ROW EXECUTE FUNCTION accounts_report_refuse()"
        )
        execute(
            f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
            "FOR EACH STATEMENT EXECUTE FUNCTION accounts_report_refuse_truncate()"
        )
        for name in TRIGGERS + PG_ONLY_TRIGGERS:
            execute(f"ALTER TABLE {TABLE} ENABLE ALWAYS TRIGGER {name}")
    elif vendor == "sqlite":
        for operation in ("UPDATE", "DELETE"):
            execute(
                f"CREATE TRIGGER {TABLE}_no_{operation.lower()} BEFORE {operation} ON {TABLE} BEGIN "
                f"SELECT RAISE(ABORT, 'an offboarding report cannot be changed or deleted ({operation} on {TABLE})'); END"
            )


def drop_guards(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    vendor = schema_editor.connection.vendor
    on = f" ON {TABLE}" if vendor == "postgresql" else ""
    for name in TRIGGERS + PG_ONLY_TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}{on}")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_data_protection_role"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        # LegalHold, which a report may name.
        ("compliance", "0001_initial"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="user",
            options={
                "ordering": ["display_name", "email"],
                "permissions": [
                    ("offboard_user", "Can offboard and reactivate people"),
                    ("restrict_processing", "Can restrict a person's processing (erasure request)"),
                ],
            },
        ),
        migrations.AddField(
            model_name="user",
            name="offboarded_by",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
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
                    models.PositiveIntegerField(help_text="Retention records of their conversations."),
                ),
                ("canonical_json", models.TextField()),
                ("sha256", models.CharField(max_length=64, unique=True)),
                ("created_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
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
                ("requested_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
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
                        to="accounts.offboardingreport",
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
        migrations.RunPython(grant_hr, revoke_hr),
        migrations.RunPython(create_guards, drop_guards),
    ]
