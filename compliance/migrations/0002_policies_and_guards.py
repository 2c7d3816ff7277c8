"""Default retention policies, and the database's refusal to change the archive.

Triggers (SQLite and PostgreSQL) refuse every UPDATE of records, their content
and audit events, every DELETE of records and audit events, and a DELETE of a
record's content before its ``retain_until``. On PostgreSQL they are ``ENABLE
ALWAYS`` (a ``session_replication_role = replica`` session cannot skip them)
and TRUNCATE of a table that holds rows is refused too. An empty table may be
truncated: that is how a test database is emptied between tests.
"""

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

PROTECTED = (
    "compliance_retentionrecord",
    "compliance_recordcontent",
    "compliance_recordperson",
    "compliance_purgeentry",
    "compliance_auditevent",
)
NO_DELETE = (
    "compliance_retentionrecord",
    "compliance_recordperson",
    "compliance_purgeentry",
    "compliance_auditevent",
)

# True when an active legal hold covers record ``r`` (every criterion a hold
# gives must match). compliance.lifecycle.record_is_held says the same in Python.
HELD = """EXISTS (
    SELECT 1 FROM compliance_legalhold h
    WHERE h.released_at IS NULL
      AND (h.conversation_id IS NULL OR h.conversation_id = r.conversation_id)
      AND (h.custodian_id IS NULL OR EXISTS (
            SELECT 1 FROM compliance_recordperson p WHERE p.record_id = r.id AND p.user_id = h.custodian_id))
      AND (h.date_from IS NULL OR r.period_end >= h.date_from)
      AND (h.date_to IS NULL OR r.period_start <= h.date_to)
)"""

POLICIES = [
    # name, class, years, days, from year end, legal basis, default
    (
        "Business correspondence (DE)",
        "business_letter",
        6,
        0,
        True,
        "HGB §257(1) no. 2-3, (4); AO §147(1), (3)",
        True,
    ),
    ("Accounting vouchers (DE)", "voucher", 8, 0, True, "HGB §257(1) no. 4, (4); AO §147(3)", False),
    ("Books and records (DE)", "books", 10, 0, True, "HGB §257(1) no. 1, (4); AO §147(3)", False),
    (
        "Broker-dealer communications (US)",
        "general",
        6,
        0,
        False,
        "SEC Rule 17a-4(b)(4); FINRA Rule 4511",
        False,
    ),
]

PG_FUNCTIONS = (
    """
CREATE OR REPLACE FUNCTION compliance_refuse() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the compliance archive refuses % on %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION compliance_content_delete_check() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM compliance_retentionrecord r WHERE r.id = OLD.record_id
               AND (r.retain_until >= CURRENT_DATE OR """
    + HELD
    + """)) THEN
        RAISE EXCEPTION 'record content cannot be deleted before its retention ends or while a legal hold covers it'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION compliance_refuse_truncate() RETURNS trigger AS $$
DECLARE
    has_rows boolean;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', TG_TABLE_NAME) INTO has_rows;
    IF has_rows THEN
        RAISE EXCEPTION 'the compliance archive refuses TRUNCATE on %', TG_TABLE_NAME
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""
)


def create_policies(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Policy = apps.get_model("compliance", "RetentionPolicy")
    for name, record_class, years, days, year_end, basis, default in POLICIES:
        Policy.objects.get_or_create(
            name=name,
            defaults={
                "record_class": record_class,
                "years": years,
                "days": days,
                "from_year_end": year_end,
                "legal_basis": basis,
                "is_default": default,
            },
        )


def create_guards(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    vendor = schema_editor.connection.vendor
    execute = schema_editor.execute
    if vendor == "postgresql":
        execute(PG_FUNCTIONS, params=None)
        for table in PROTECTED:
            execute(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION compliance_refuse()"
            )
            execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION compliance_refuse_truncate()"
            )
        for table in NO_DELETE:
            execute(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION compliance_refuse()"
            )
        execute(
            "CREATE TRIGGER compliance_recordcontent_no_early_delete BEFORE DELETE ON compliance_recordcontent "
            "FOR EACH ROW EXECUTE FUNCTION compliance_content_delete_check()"
        )
        for table in PROTECTED:
            for suffix in ("no_update", "no_truncate") + (
                ("no_delete",) if table in NO_DELETE else ("no_early_delete",)
            ):
                execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_{suffix}")
    elif vendor == "sqlite":
        for table in PROTECTED:
            execute(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} BEGIN "
                f"SELECT RAISE(ABORT, 'the compliance archive refuses UPDATE on {table}'); END"
            )
        for table in NO_DELETE:
            execute(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} BEGIN "
                f"SELECT RAISE(ABORT, 'the compliance archive refuses DELETE on {table}'); END"
            )
        execute(
            "CREATE TRIGGER compliance_recordcontent_no_early_delete BEFORE DELETE ON compliance_recordcontent "
            "WHEN EXISTS (SELECT 1 FROM compliance_retentionrecord r WHERE r.id = OLD.record_id "
            f"AND (r.retain_until >= date('now') OR {HELD})) "
            "BEGIN SELECT RAISE(ABORT, 'record content cannot be deleted before its retention ends "
            "or while a legal hold covers it'); END"
        )


def drop_guards(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    vendor = schema_editor.connection.vendor
    for table in PROTECTED:
        for suffix in ("no_update", "no_truncate", "no_delete", "no_early_delete"):
            on = f" ON {table}" if vendor == "postgresql" else ""
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_{suffix}{on}")


class Migration(migrations.Migration):
    dependencies = [("compliance", "0001_initial")]

    operations = [
        migrations.RunPython(create_policies, migrations.RunPython.noop),
        migrations.RunPython(create_guards, drop_guards),
    ]
