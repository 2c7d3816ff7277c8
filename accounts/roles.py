"""The roles of Kontor, as Django groups made by a data migration."""

HR = "HR"
AUDITORS = "Auditors"
# The data protection officer reads the auditors' audit trail (who searched,
# viewed and exported what), nothing of the archive itself.
DATA_PROTECTION = "Data protection"
ALL = (HR, AUDITORS, DATA_PROTECTION)
# Roles that open the archive or its audit trail: only an administrator
# (superuser) grants or removes them, and with KONTOR_AUDIT_FOUR_EYES a second
# administrator must confirm a new grant before it takes effect.
ADMIN_ONLY = (AUDITORS, DATA_PROTECTION)
LABELS = {
    HR: "HR — manages people in admin",
    AUDITORS: "Auditor",
    DATA_PROTECTION: "Data protection — reads the auditors' audit trail",
}

# What HR may do in admin: manage people, departments and invitations; nothing
# about archives, and never superuser powers.
# Kept in step with migrations 0002_roles and 0006_offboarding, which grant them
# to the HR group (and hr's 0001, which moved three of them to the hr app).
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
    # Offboarding (0006): offboard, reactivate, restrict processing on an erasure
    # request, read the reports, see and cancel scheduled offboardings. The
    # reports and schedules are the hr app's models since issue 17 (hr
    # migration 0001 moved their permissions there); named here as data only.
    ("accounts", "offboard_user"),
    ("accounts", "restrict_processing"),
    ("hr", "view_offboardingreport"),
    ("hr", "view_scheduledoffboarding"),
    ("hr", "change_scheduledoffboarding"),
)
