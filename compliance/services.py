"""The only writer of retention records: snapshots of the messenger's journal.

``snapshot_conversation`` takes the conversation's cursor row under a lock,
reads the journal events after it, writes them as one record whose canonical
JSON is hashed and linked to the previous record, and moves the cursor, all in
one transaction. A duplicate or concurrent run waits for the lock and then
finds nothing new; a chain position can be taken only once (unique
constraint), so a retry never makes a gap or a duplicate.

Beside the snapshots: legal holds (set and released here; what they keep from
the purge is ``compliance.lifecycle``'s question), the hourly reconciliation
that proves completeness, and the alerts to the compliance contacts. What
happens to records as they age (purge, live data, erasure) is
``compliance.lifecycle``, which calls in here; nothing here calls back.
"""

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Max, OuterRef, Subquery
from django.db.models.functions import Coalesce, Now

from accounts.models import User
from compliance import archive_store, index, policies
from compliance.audit import Origin, audit_event_record
from compliance.models import (
    AuditEvent,
    LegalHold,
    RecordContent,
    RecordPerson,
    RetentionRecord,
    SnapshotCursor,
)
from compliance.records import (
    canonical_json,
    company_day,
    person_entry,
    record_hash,
    record_hmac,
)
from messenger.models import Conversation, Event, Membership

logger = logging.getLogger(__name__)

FORMAT = "kontor.retention-record/1"
MAX_EVENTS_PER_RECORD = 1000


# The journal's columns a record needs, read as plain values: model instances
# (three users per event) cost more than the rest of a snapshot together.
_EVENT_FIELDS = (
    "id",
    "type",
    "created_at",
    "actor_id",
    "data",
    "subject_id",
    "message_id",
    "message__seq",
    "message__author_id",
    "message__reply_to_id",
    "revision_id",
    "revision__number",
    "revision__kind",
    "revision__body",
    "revision__files",
    "revision__created_at",
)


def _event_entry(event: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": event["id"],
        "type": event["type"],
        "at": event["created_at"].isoformat(),
        "actor": event["actor_id"],
        "data": event["data"],
    }
    if event["subject_id"]:
        entry["subject"] = event["subject_id"]
    if event["message_id"] and event["message__seq"] is not None:
        entry["message"] = {
            "id": event["message_id"],
            "seq": event["message__seq"],
            "author": event["message__author_id"],
            "reply_to": event["message__reply_to_id"],
        }
    if event["revision_id"] is not None:
        entry["revision"] = {
            "number": event["revision__number"],
            "kind": event["revision__kind"],
            "body": event["revision__body"],
            "files": event["revision__files"] or [],
            "at": event["revision__created_at"].isoformat(),
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
        .order_by("id")
        .values(*_EVENT_FIELDS)[:MAX_EVENTS_PER_RECORD]
    )
    if not events:
        return Snapshot(record=None, events=0)
    # Everyone the events name (actors, subjects, authors) and everyone who is a
    # member when the record is made (they could read it): a record names its
    # audience, and a custodian hold reaches it. One query for all of them.
    members_at_capture = sorted(
        Membership.objects.filter(conversation=conversation, left_at__isnull=True).values_list(
            "user_id", flat=True
        )
    )
    named = {
        pk
        for event in events
        for pk in (event["actor_id"], event["subject_id"], event["message__author_id"])
        if pk is not None
    } | set(members_at_capture)
    people: dict[str, Any] = {
        str(user.pk): person_entry(user)
        for user in User.objects.filter(pk__in=named).select_related("department").order_by("pk")
    }
    first_day, last_day = company_day(events[0]["created_at"]), company_day(events[-1]["created_at"])
    policy, keep_until = policies.policy_for(
        conversation, made_on=last_day, user_ids=[int(pk) for pk in people]
    )
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
        "first_event": events[0]["id"],
        "last_event": events[-1]["id"],
        "events": [_event_entry(e) for e in events],
        "people": people,
        "members": members_at_capture,
        "policy": {"name": policy.name, "class": policy.record_class},
        "retain_until": keep_until.isoformat(),
    }
    if settings.KONTOR_ARCHIVE_HMAC_KEY:
        # Inside the hash: this record was made with a key, so it must carry
        # an HMAC. Blanking the HMAC column is then tampering, not an old record.
        payload["keyed"] = True
    content = canonical_json(payload)
    digest = record_hash(content)
    record = RetentionRecord.objects.create(
        conversation=conversation,
        seq=seq,
        first_event_id=events[0]["id"],
        last_event_id=events[-1]["id"],
        event_count=len(events),
        sha256=digest,
        hmac=record_hmac(content),
        previous_hash=cursor.last_hash,
        policy=policy,
        retain_until=keep_until,
        period_start=first_day,
        period_end=last_day,
    )
    RecordContent.objects.create(record=record, canonical_json=content.decode("utf-8"))
    index.index_record(record, payload)
    # Inside the transaction: a failed copy rolls the snapshot back for a retry,
    # which writes the same names and bytes again (a no-op for what arrived).
    archive_store.write_record(record, content, payload)
    RecordPerson.objects.bulk_create(RecordPerson(record=record, user_id=int(pk)) for pk in people)
    SnapshotCursor.objects.filter(pk=cursor.pk).update(
        last_event_id=events[-1]["id"], last_seq=seq, last_hash=digest
    )
    return Snapshot(record=record, events=len(events))


def archive_conversation(*, conversation_id: int) -> int:
    """Snapshot the conversation until its journal is archived to the end (one
    record per transaction); returns how many journal events were archived."""
    archived = 0
    while (snapshot := snapshot_conversation(conversation_id=conversation_id)).record is not None:
        archived += snapshot.events
    return archived


def alert_contacts(subject: str, message: str, *, fail_silently: bool = False) -> None:
    """Log a compliance alert and mail it to ``KONTOR_COMPLIANCE_CONTACTS``."""
    logger.error(message)
    if settings.KONTOR_COMPLIANCE_CONTACTS:
        send_mail(
            f"[Kontor] {subject}",
            message,
            settings.DEFAULT_FROM_EMAIL,
            settings.KONTOR_COMPLIANCE_CONTACTS,
            fail_silently=fail_silently,
        )


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


@transaction.atomic
def hold_set(
    *,
    actor: User,
    name: str,
    reason: str,
    custodian: User | None = None,
    conversation: Conversation | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    origin: Origin = Origin.NONE,
) -> LegalHold:
    """Set a legal hold; ``origin`` says where the act came from (the workspace
    passes the request's)."""
    if not (custodian or conversation or date_from or date_to):
        raise ValidationError("A legal hold needs a custodian, a conversation or a date range.")
    if not name.strip() or not reason.strip():
        raise ValidationError("A legal hold needs a case name and a reason.")
    hold = LegalHold.objects.create(
        name=name.strip(),
        reason=reason.strip(),
        custodian=custodian,
        conversation=conversation,
        date_from=date_from,
        date_to=date_to,
        set_by=actor,
    )
    audit_event_record(
        kind=AuditEvent.Kind.HOLD_SET,
        actor=actor,
        origin=origin,
        detail={
            "hold": hold.pk,
            "name": hold.name,
            "reason": hold.reason,
            "custodian": custodian.pk if custodian else None,
            "conversation": conversation.pk if conversation else None,
            "date_from": date_from.isoformat() if date_from else None,
            "date_to": date_to.isoformat() if date_to else None,
        },
    )
    return hold


@transaction.atomic
def hold_release(*, actor: User, hold_id: int, reason: str, origin: Origin = Origin.NONE) -> LegalHold:
    hold = LegalHold.objects.select_for_update().get(pk=hold_id)
    if hold.released_at is not None:
        return hold
    LegalHold.objects.filter(pk=hold.pk).update(released_at=Now(), released_by=actor)
    audit_event_record(
        kind=AuditEvent.Kind.HOLD_RELEASED,
        actor=actor,
        origin=origin,
        detail={"hold": hold.pk, "name": hold.name, "reason": reason},
    )
    hold.refresh_from_db()
    return hold


@dataclass(frozen=True)
class Reconciliation:
    missing_events: int
    conversations: list[int]


def reconcile(*, older_than: timedelta = timedelta(minutes=5)) -> Reconciliation:
    """Prove completeness: every journal event older than ``older_than`` is in a
    record. Archives what is missing and tells the compliance contacts how much.

    Completeness never depends on the minute sweep having run (a worker can
    lose a task): this finds the gap from the database alone.
    """
    cursor = SnapshotCursor.objects.filter(conversation=OuterRef("conversation")).values("last_event_id")
    behind = Event.objects.annotate(archived_to=Coalesce(Subquery(cursor), 0)).filter(
        id__gt=F("archived_to"), created_at__lt=Now() - older_than
    )
    missing = behind.count()
    conversations = sorted(set(behind.values_list("conversation_id", flat=True)))
    for conversation_id in conversations:
        archive_conversation(conversation_id=conversation_id)
    if missing:
        alert_contacts(
            "Archive reconciliation: events were late",
            f"Kontor's reconciliation found {missing} journal event(s) in {len(conversations)} "
            "conversation(s) that had not reached a retention record in time; they are archived now.",
        )
    return Reconciliation(missing_events=missing, conversations=conversations)
