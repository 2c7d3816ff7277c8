"""The only writer of retention records: snapshots of the messenger's journal.

``snapshot_conversation`` takes the conversation's cursor row under a lock,
reads the journal events after it, writes them as one record whose canonical
JSON is hashed and linked to the previous record, and moves the cursor, all in
one transaction. A duplicate or concurrent run waits for the lock and then
finds nothing new; a chain position can be taken only once (unique
constraint), so a retry never makes a gap or a duplicate.
"""

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, OuterRef, Subquery
from django.db.models.functions import Coalesce

from accounts.models import User
from compliance.models import RecordContent, RetentionPolicy, RetentionRecord, SnapshotCursor
from messenger.models import Conversation, Event

FORMAT = "kontor.retention-record/1"
MAX_EVENTS_PER_RECORD = 1000


def canonical_json(payload: dict[str, Any]) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8, and no floats (they do not round-trip)."""

    def refuse_floats(value: Any) -> None:
        if isinstance(value, float):
            raise TypeError("Canonical JSON holds no floats.")
        if isinstance(value, dict):
            for item in value.values():
                refuse_floats(item)
        elif isinstance(value, list):
            for item in value:
                refuse_floats(item)

    refuse_floats(payload)
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def record_hmac(content: bytes) -> str:
    key = settings.KONTOR_ARCHIVE_HMAC_KEY
    return hmac.new(key.encode(), content, hashlib.sha256).hexdigest() if key else ""


def retain_until(policy: RetentionPolicy, made_on: date) -> date:
    """The last day a record made on ``made_on`` must be kept under ``policy``.

    With ``from_year_end`` (HGB §257(5), AO §147(4)) the period starts at the
    end of the calendar year in which the record was made.
    """
    start = date(made_on.year, 12, 31) if policy.from_year_end else made_on
    try:
        end = start.replace(year=start.year + policy.years)
    except ValueError:  # 29 February
        end = start.replace(year=start.year + policy.years, day=28)
    return end + timedelta(days=policy.days)


def policy_for(conversation: Conversation) -> RetentionPolicy:
    policy = RetentionPolicy.objects.filter(is_default=True).first()
    if policy is None:
        raise RuntimeError("No default retention policy: migration compliance 0002 makes one.")
    return policy


def _person(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {
        "id": user.pk,
        "name": str(user),
        "email": user.email,
        "department": user.department.name if user.department else None,
        "active": user.is_active,
    }


def _event_entry(event: Event) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": event.id,
        "type": event.type,
        "at": event.created_at.isoformat(),
        "actor": event.actor_id,
        "data": event.data,
    }
    if event.subject_id:
        entry["subject"] = event.subject_id
    if event.message_id and event.message is not None:
        entry["message"] = {
            "id": event.message.pk,
            "seq": event.message.seq,
            "author": event.message.author_id,
            "reply_to": event.message.reply_to_id,
        }
    if event.revision is not None:
        entry["revision"] = {
            "number": event.revision.number,
            "kind": event.revision.kind,
            "body": event.revision.body,
            "files": event.revision.files or [],
            "at": event.revision.created_at.isoformat(),
        }
    return entry


@dataclass(frozen=True)
class Snapshot:
    record: RetentionRecord | None
    events: int


@transaction.atomic
def snapshot_conversation(*, conversation_id: int) -> Snapshot:
    """Archive the conversation's journal events after its cursor as one record."""
    conversation = Conversation.objects.get(pk=conversation_id)
    SnapshotCursor.objects.get_or_create(conversation=conversation)
    # The lock orders snapshots of one conversation: the second waits, then
    # sees the moved cursor and finds nothing new.
    cursor = SnapshotCursor.objects.select_for_update().get(conversation=conversation)
    events = list(
        Event.objects.filter(conversation=conversation, id__gt=cursor.last_event_id)
        .select_related("message", "revision", "actor__department", "subject__department")
        .order_by("id")[:MAX_EVENTS_PER_RECORD]
    )
    if not events:
        return Snapshot(record=None, events=0)
    people: dict[str, Any] = {}
    for event in events:
        for person in (event.actor, event.subject):
            if person is not None:
                people[str(person.pk)] = _person(person)
        if event.message is not None and str(event.message.author_id) not in people:
            people[str(event.message.author_id)] = _person(
                User.objects.select_related("department").get(pk=event.message.author_id)
            )
    policy = policy_for(conversation)
    seq = cursor.last_seq + 1
    payload = {
        "format": FORMAT,
        "conversation": {
            "id": conversation.pk,
            "kind": conversation.kind,
            "name": conversation.name,
            "topic": conversation.topic,
            "private": conversation.is_private,
        },
        "seq": seq,
        "previous_hash": cursor.last_hash,
        "first_event": events[0].id,
        "last_event": events[-1].id,
        "events": [_event_entry(e) for e in events],
        "people": people,
        "policy": {"name": policy.name, "class": policy.record_class},
    }
    content = canonical_json(payload)
    digest = record_hash(content)
    record = RetentionRecord.objects.create(
        conversation=conversation,
        seq=seq,
        first_event_id=events[0].id,
        last_event_id=events[-1].id,
        event_count=len(events),
        sha256=digest,
        hmac=record_hmac(content),
        previous_hash=cursor.last_hash,
        policy=policy,
        retain_until=retain_until(policy, events[-1].created_at.date()),
    )
    RecordContent.objects.create(record=record, canonical_json=content.decode("utf-8"))
    SnapshotCursor.objects.filter(pk=cursor.pk).update(
        last_event_id=events[-1].id, last_seq=seq, last_hash=digest
    )
    return Snapshot(record=record, events=len(events))


def conversations_due() -> list[int]:
    """Conversations whose journal moved past their snapshot cursor."""
    newest = (
        Event.objects.filter(conversation=OuterRef("pk"))
        .order_by()
        .values("conversation")
        .annotate(m=Max("id"))
    ).values("m")
    cursor = SnapshotCursor.objects.filter(conversation=OuterRef("pk")).values("last_event_id")
    return list(
        Conversation.objects.annotate(newest=Subquery(newest), archived_to=Coalesce(Subquery(cursor), 0))
        .filter(newest__gt=F("archived_to"))
        .values_list("pk", flat=True)
    )
