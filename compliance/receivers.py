"""Compliance records what lower apps announce.

``accounts`` may not import compliance (the app stack in DESIGN.md), so its
role service sends ``accounts.signals.role_changed`` inside its transaction and
this receiver writes the audit event: who changed whose roles, before and
after, from where. A failure here rolls the role change back.
"""

from typing import Any

from django.dispatch import receiver

from accounts.models import User
from accounts.services import RoleChange
from accounts.signals import role_changed
from compliance.audit import audit_event_record
from compliance.models import AuditEvent


def _kinds(change: RoleChange) -> list[str]:
    if change.confirmed:
        return [AuditEvent.Kind.ROLE_GRANT_CONFIRMED]
    if change.cancelled:
        return [AuditEvent.Kind.ROLE_GRANT_CANCELLED]
    kinds: list[str] = []
    if change.changed:
        kinds.append(AuditEvent.Kind.ROLES_CHANGED)
    if change.pending:
        kinds.append(AuditEvent.Kind.ROLE_GRANT_REQUESTED)
    return kinds


@receiver(role_changed, sender=User, dispatch_uid="compliance.audit_role_change")
def audit_role_change(sender: type[User], change: RoleChange, **kwargs: Any) -> None:
    for kind in _kinds(change):
        audit_event_record(kind=kind, actor=change.actor, detail=change.detail())
