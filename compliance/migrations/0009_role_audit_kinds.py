"""Audit events for role changes and four-eyes role grants (accounts.services.user_roles_set)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0008_export_started_at"),
    ]

    operations = [
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
                    ("offboarded", "Person offboarded"),
                    ("reactivated", "Person reactivated"),
                    ("roles_changed", "Roles changed"),
                    ("role_grant_requested", "Role granted, awaiting a second administrator"),
                    ("role_grant_confirmed", "Role grant confirmed (four eyes)"),
                    ("role_grant_cancelled", "Role grant cancelled"),
                ],
                max_length=30,
            ),
        ),
    ]
