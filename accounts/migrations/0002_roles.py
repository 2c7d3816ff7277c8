"""The roles HR and Auditors, with exactly the permissions HR needs in admin."""

from django.apps.registry import Apps
from django.contrib.auth.management import create_permissions
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

HR = "HR"
AUDITORS = "Auditors"
HR_PERMISSIONS = (
    ("accounts", "view_user"),
    ("accounts", "add_user"),
    ("accounts", "change_user"),
    ("accounts", "view_department"),
    ("accounts", "add_department"),
    ("accounts", "change_department"),
    ("accounts", "delete_department"),
    ("accounts", "view_invitation"),
    ("accounts", "add_invitation"),
    ("accounts", "change_invitation"),
)


def create_roles(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Permissions are normally made after migrate; make them now so the
    # group can hold them on a fresh database.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    hr, _ = Group.objects.get_or_create(name=HR)
    Group.objects.get_or_create(name=AUDITORS)
    for app_label, codename in HR_PERMISSIONS:
        hr.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def remove_roles(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    apps.get_model("auth", "Group").objects.filter(name__in=[HR, AUDITORS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
