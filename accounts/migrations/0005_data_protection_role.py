"""The data protection officer's role: reads the auditors' audit trail."""

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

DATA_PROTECTION = "Data protection"


def create_role(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    apps.get_model("auth", "Group").objects.get_or_create(name=DATA_PROTECTION)


def remove_role(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    apps.get_model("auth", "Group").objects.filter(name=DATA_PROTECTION).delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_erasure"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(create_role, remove_role)]
