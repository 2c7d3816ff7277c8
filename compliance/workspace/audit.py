"""Every act in the workspace is one audit event: who, when (database clock),
from where (address, browser), in which case, and what (the query, the
conversation and range, the export)."""

from typing import Any

from django.http import HttpRequest

from accounts.models import User
from compliance.models import AuditEvent, Case


def client_ip(request: HttpRequest) -> str | None:
    """The address the request came from. Behind a proxy, Django's
    ``REMOTE_ADDR`` is the proxy's unless the deployment sets it from the
    forwarded header (docs/deployment.md)."""
    return request.META.get("REMOTE_ADDR") or None


def record(request: HttpRequest, kind: str, *, case: Case | None = None, **detail: Any) -> AuditEvent:
    actor = request.user if isinstance(request.user, User) else None
    return AuditEvent.objects.create(
        kind=kind,
        actor=actor,
        case=case,
        ip=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        detail=detail,
    )
