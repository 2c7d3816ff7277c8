"""Transitional: ``compliance.workspace.exports`` still calls ``record``.

Every other workspace module writes through ``compliance.audit``. Exports
move to ``compliance.audit.audit_event_record`` on the branch that splits
them (issue 17, i17-chain); this module is deleted once that lands. It
delegates to the one writer, so it adds no second way into the log.
"""

from typing import Any

from django.http import HttpRequest

from accounts.models import User
from compliance.audit import Origin, audit_event_record
from compliance.models import AuditEvent, Case


def record(request: HttpRequest, kind: str, *, case: Case | None = None, **detail: Any) -> AuditEvent:
    actor = request.user if isinstance(request.user, User) else None
    return audit_event_record(kind=kind, actor=actor, case=case, origin=Origin.of(request), detail=detail)
