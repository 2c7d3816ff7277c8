"""Read queries other apps ask of the archive: health and metrics, and the
offboarding report (``hr``), which names each chain's head.

The workspace has its own selectors (``compliance.workspace.selectors``).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import F, Min, OuterRef, Subquery
from django.db.models.functions import Coalesce

from compliance.models import AuditEvent, RecordPerson, RetentionRecord, Seal, SnapshotCursor
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


@dataclass(frozen=True)
class ChainHead:
    """The newest record of one conversation's chain, and how long the chain is."""

    record: int
    seq: int
    sha256: str
    last_event: int
    records: int


def chain_heads(*, conversation_ids: Iterable[int]) -> dict[int, ChainHead]:
    """The head of each conversation's chain that has records (one query)."""
    heads: dict[int, ChainHead] = {}
    rows = (
        RetentionRecord.objects.filter(conversation_id__in=list(conversation_ids))
        .order_by("conversation_id", "seq")
        .values_list("conversation_id", "pk", "seq", "sha256", "last_event_id")
    )
    for conversation_id, pk, seq, sha256, last_event in rows:
        before = heads.get(conversation_id)
        heads[conversation_id] = ChainHead(pk, seq, sha256, last_event, (before.records if before else 0) + 1)
    return heads


def records_count(*, conversation_ids: Iterable[int]) -> int:
    """How many retention records the conversations' chains hold."""
    return RetentionRecord.objects.filter(conversation_id__in=list(conversation_ids)).count()


def records_naming_count(*, user_id: int) -> int:
    """How many retention records name the person (as author, member or subject)."""
    return RecordPerson.objects.filter(user_id=user_id).count()
