"""The one writer of the audit log.

Every compliance-relevant act, whoever does it and from wherever (a page, the
admin, a task, a shell), becomes one ``AuditEvent`` through
``audit_event_record``: the kind, the person who acted (``None`` for the
system), the case it belongs to, where the act came from, and what it was.
The log is append-only (``ImmutableModel`` and the database triggers), so
this function is the only way in.

Callers pass an ``Origin`` rather than the request: the actor is always named
explicitly, so the event cannot silently take a different person from a
request it was handed, and tasks and commands use the same function with
``Origin.NONE``.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from django.http import HttpRequest

from accounts.models import User
from compliance.models import AuditEvent, Case

USER_AGENT_MAX = 300


@dataclass(frozen=True)
class Origin:
    """Where an act came from: the client's address and browser, or nowhere
    (a task, a command, a shell)."""

    ip: str | None = None
    user_agent: str = ""

    NONE: ClassVar["Origin"]

    @classmethod
    def of(cls, request: HttpRequest) -> "Origin":
        """The address and browser of a request. Behind a proxy Django's
        ``REMOTE_ADDR`` is the proxy's unless the deployment sets it from the
        forwarded header (docs/deployment.md)."""
        return cls(
            ip=request.META.get("REMOTE_ADDR") or None,
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX],
        )


Origin.NONE = Origin()


def audit_event_record(
    *,
    kind: str,
    actor: User | None,
    detail: Mapping[str, Any] | None = None,
    case: Case | None = None,
    origin: Origin = Origin.NONE,
) -> AuditEvent:
    """Append one event to the audit log (inside the caller's transaction, so
    the act and its record commit or roll back together)."""
    if kind not in AuditEvent.Kind.values:
        raise ValueError(f"Unknown audit event kind {kind!r}.")
    return AuditEvent.objects.create(
        kind=kind,
        actor=actor,
        case=case,
        ip=origin.ip,
        user_agent=origin.user_agent[:USER_AGENT_MAX],
        detail=dict(detail or {}),
    )
