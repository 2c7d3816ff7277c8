"""The archived conversations, from their records' heads and tails."""

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import Count, Max, Min, Q, Value
from django.db.models.functions import StrIndex, Substr

from compliance.index import conversation_title
from compliance.models import ArchivedMessage, RecordContent, RecordPerson, RetentionRecord


@dataclass(frozen=True)
class ArchivedConversation:
    id: int
    title: str
    kind: str
    name: str
    first_day: date
    last_day: date
    records: int
    purged: int


_HEAD = '{"conversation":'


def _head(head: str | None) -> dict[str, Any]:
    """The ``conversation`` object at the start of a record's canonical JSON
    (its keys are sorted: "conversation" comes first, "events" next)."""
    if not head or not head.startswith(_HEAD):
        return {}
    try:
        value, _end = json.JSONDecoder().raw_decode(head, len(_HEAD))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _tail(tail: str | None) -> dict[str, Any]:
    """The members and people at the end of a record's canonical JSON."""
    if not tail or not tail.startswith('"members":'):
        return {}
    try:
        value = json.loads("{" + tail)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def archived_conversations(*, name: str = "", participant: str = "") -> list[ArchivedConversation]:
    """Every conversation the archive holds, from its records: its name (or
    members) as the latest readable record captured it, its kind, its first
    and last archived day and how many records it has; the most recently
    archived first.

    ``name`` matches the captured name or title; ``participant`` anyone a
    record names (by their account's name or email, or as a captured author).
    Three queries, whatever the number of records.
    """
    rows = RetentionRecord.objects.values("conversation_id").annotate(
        first_day=Min("period_start"),
        last_day=Max("period_end"),
        records=Count("id"),
        purged=Count("purge"),
        latest=Max("id", filter=Q(content__isnull=False)),
    )
    participant = participant.strip()
    if participant:
        people = RecordPerson.objects.filter(
            Q(user__display_name__icontains=participant) | Q(user__email__icontains=participant)
        ).values("record__conversation_id")
        authors = ArchivedMessage.objects.filter(author_name__icontains=participant).values("conversation_id")
        rows = rows.filter(Q(conversation_id__in=people) | Q(conversation_id__in=authors))
    found = list(rows.order_by("-last_day", "-conversation_id"))
    latest = [row["latest"] for row in found if row["latest"] is not None]
    heads = {
        record_id: _head(head)
        for record_id, head in RecordContent.objects.filter(record_id__in=latest)
        .annotate(head=Substr("canonical_json", 1, StrIndex("canonical_json", Value('"events":'))))
        .values_list("record_id", "head")
    }
    # A direct conversation, or a group without a name, is called by its members.
    unnamed = [pk for pk, head in heads.items() if not str(head.get("name") or "").strip()]
    tails = {
        record_id: _tail(tail)
        for record_id, tail in RecordContent.objects.filter(record_id__in=unnamed)
        .annotate(tail=Substr("canonical_json", StrIndex("canonical_json", Value('"members":'))))
        .values_list("record_id", "tail")
    }
    wanted = name.strip().casefold()
    result = []
    for row in found:
        head = heads.get(row["latest"], {})
        tail = tails.get(row["latest"], {})
        captured = str(head.get("name") or "")
        if head:
            title = conversation_title(
                {
                    "conversation": {**head, "id": row["conversation_id"]},
                    "members": tail.get("members") or [],
                    "people": tail.get("people") or {},
                }
            )
        else:
            title = f"Conversation {row['conversation_id']}"
        if wanted and wanted not in title.casefold() and wanted not in captured.casefold():
            continue
        result.append(
            ArchivedConversation(
                id=row["conversation_id"],
                title=title,
                kind=str(head.get("kind") or ""),
                name=captured,
                first_day=row["first_day"],
                last_day=row["last_day"],
                records=row["records"],
                purged=row["purged"],
            )
        )
    return result
