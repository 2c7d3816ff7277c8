"""The admin as HR uses it: people, departments, invitations and role grants,
one module per model. Every change goes through ``accounts.services``; HR
(staff in the ``HR`` group) never sees superuser-only fields and cannot edit
superusers. Offboarding, reactivation and restriction are added to the people
list by ``hr.admin``, which registers its own ``UserAdmin`` on top of this one.
"""

from accounts.admin.departments import DepartmentAdmin
from accounts.admin.invitations import InvitationAdmin, InvitationForm
from accounts.admin.role_grants import RoleGrantAdmin
from accounts.admin.users import (
    RolesField,
    RolesFormMixin,
    StatusFilter,
    UserAdmin,
    UserChangeForm,
    UserCreationForm,
)

__all__ = [
    "DepartmentAdmin",
    "InvitationAdmin",
    "InvitationForm",
    "RoleGrantAdmin",
    "RolesField",
    "RolesFormMixin",
    "StatusFilter",
    "UserAdmin",
    "UserChangeForm",
    "UserCreationForm",
]
