"""Audit events for HR's offboarding and reactivation."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0005_auditor_workspace"),
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
                ],
                max_length=30,
            ),
        ),
    ]
