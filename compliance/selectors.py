"""Read queries other apps ask of the archive (health, metrics).

The workspace has its own selectors (``compliance.workspace.selectors``); these
are the few figures an operator's probe needs, each one statement.
"""

from datetime import datetime
from typing import Any

from django.db.models import F, Min, OuterRef, Subquery
from django.db.models.functions import Coalesce

from compliance.models import AuditEvent, Seal, SnapshotCursor
from messenger.models import Conversation, Event


def seal_latest_at() -> datetime | None:
    """When the newest seal was made, or None before the first."""
    return Seal.objects.order_by("-seq").values_list("created_at", flat=True).first()


def verification_latest() -> tuple[datetime, dict[str, Any]] | None:
    """When the newest archive verification ran and what it found, or None."""
    latest = (
        AuditEvent.objects.filter(kind=AuditEvent.Kind.VERIFIED)
        .order_by("-id")
        .values_list("created_at", "detail")
        .first()
    )
    return (latest[0], latest[1] or {}) if latest else None


def journal_oldest_unarchived_at() -> datetime | None:
    """When the oldest journal event not yet in a retention record was written
    (None when everything is archived)."""
    cursor = SnapshotCursor.objects.filter(conversation=OuterRef("pk")).values("last_event_id")[:1]
    oldest_pending = (
        Event.objects.filter(conversation=OuterRef("pk"), id__gt=OuterRef("archived_to"))
        .order_by("id")
        .values("created_at")[:1]
    )
    oldest: datetime | None = (
        Conversation.objects.annotate(archived_to=Coalesce(Subquery(cursor), 0))
        .annotate(pending=Subquery(oldest_pending))
        .filter(pending__isnull=False)
        .aggregate(oldest=Min(F("pending")))["oldest"]
    )
    return oldest
