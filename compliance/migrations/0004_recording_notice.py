"""Regulated scopes tell their participants that they are recorded (MiFID II
Art. 16(7), SEC 17a-4), and the EU investment-services policy."""

from django.apps.registry import Apps
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def regulated_policies(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Policy = apps.get_model("compliance", "RetentionPolicy")
    Policy.objects.filter(name="Broker-dealer communications (US)").update(recording_notice=True)
    Policy.objects.get_or_create(
        name="Investment services communications (EU)",
        defaults={
            "record_class": "general",
            "years": 5,
            "days": 0,
            "from_year_end": False,
            "legal_basis": "MiFID II Art. 16(7); Delegated Regulation (EU) 2017/565 Art. 76 (7 years on request)",
            "recording_notice": True,
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0003_assignments_extensions_seals"),
    ]

    operations = [
        migrations.AddField(
            model_name="retentionpolicy",
            name="recording_notice",
            field=models.BooleanField(
                default=False,
                help_text="A regulated scope (MiFID II, SEC 17a-4): every participant sees that the conversation is recorded and archived.",
            ),
        ),
        migrations.RunPython(regulated_policies, migrations.RunPython.noop),
    ]
