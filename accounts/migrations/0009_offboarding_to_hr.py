"""Offboarding moves to the ``hr`` app (issue 17): ``OffboardingReport`` and
``ScheduledOffboarding`` leave accounts' model state only.

Their tables, rows, constraints and guards (triggers of 0006) stay where they
are: ``hr`` migration 0001 takes the same tables into its state
(``db_table``), so nothing is copied or dropped. From here on accounts' state
no longer names ``compliance.LegalHold``.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_role_grants"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                # The schedule points at the report: it goes first.
                migrations.DeleteModel(name="ScheduledOffboarding"),
                migrations.DeleteModel(name="OffboardingReport"),
            ],
            database_operations=[],
        ),
    ]
