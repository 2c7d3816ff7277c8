"""The roles of Kontor, as Django groups made by a data migration."""

HR = "HR"
AUDITORS = "Auditors"
# The data protection officer reads the auditors' audit trail (who searched,
# viewed and exported what), nothing of the archive itself.
DATA_PROTECTION = "Data protection"
ALL = (HR, AUDITORS, DATA_PROTECTION)

# What HR may do in admin: manage people, departments and invitations; nothing
# about archives, and never superuser powers.
# Kept in step with migration 0002_roles, which grants them to the HR group.
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
