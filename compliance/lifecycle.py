"""What happens to records and live data as they age: the purge, live data
after retention, and GDPR erasure requests.

The rules:

- ``purge_expired`` (the daily task) deletes the content of every record past
  its retention (extensions included) that no active legal hold covers. The
  chain entry stays (hash and link) with a ``PurgeEntry``; the search index
  rows and the archive storage's copy go with the content. The database
  re-checks expiry and hold (migration 0002's trigger): this is the only
  deletion path, and each purge is an audit event carrying the record's hash.
- ``purge_live``: when a record's policy says so (``purge_live``), the live
  messages and files that purged records covered are deleted too, but only
  messages whose every journal event lies in a purged record, and never what
  an active legal hold covers.
- ``processing_restrict``: an erasure request during retention (GDPR Art.
  17(3)(b), (e), Art. 18) restricts the person: their account is closed, they
  and their messages are gone from chat, directory and search, and the archive
  keeps them for the auditors. ``erase_restricted`` (run by the daily purge)
  erases them once no unpurged record names them any more.

Every act is an audit event. Records are written by ``compliance.services``
(which this module calls to archive before restricting); accounts' rows
change only through ``accounts.services``.
"""

from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import DateField, Exists, Max, OuterRef, Q, QuerySet
from django.db.models.functions import Cast, Now
from django.utils import timezone

from accounts.models import User
from accounts.services import user_anonymise, user_processing_restrict
from archive import services as files
from compliance import archive_store, index, services
from compliance.audit import Origin, audit_event_record
from compliance.models import (
    AuditEvent,
    LegalHold,
    PurgeEntry,
    RecordContent,
    RecordPerson,
    RetentionRecord,
)
from messenger.models import (
    Event,
    InboundMail,
    MailNotification,
    Mention,
    Message,
    MessageAttachment,
    MessageRevision,
    Reaction,
)

# Why a person is erased when the last record naming them is purged, and why at
# once when no record named them (no retention duty ever deferred it).
RETENTION_ENDED_BASIS = "GDPR Art. 17(1): the retention duty that deferred erasure has ended."
NOTHING_RETAINED_BASIS = (
    "GDPR Art. 17(1): no archived record names the person, so no retention duty defers "
    "erasure; erased without undue delay."
)
DEFAULT_ERASURE_BASIS = (
    "GDPR Art. 17(3)(b): erasure deferred while a legal obligation to retain runs (HGB §257, AO §147; "
    "in Germany with §35(3) BDSG), and Art. 17(3)(e) where legal claims are concerned; processing "
    "restricted until then."
)


# --- Records past their retention -------------------------------------------------


@dataclass(frozen=True)
class Purge:
    purged: int
    held: int
    messages: int = 0
    files: int = 0
    people: int = 0


def _holds_covering(record: RetentionRecord) -> QuerySet[LegalHold]:
    """Active holds that cover ``record``. The content-delete trigger (migration
    0002) checks the same conditions in SQL, so the database agrees."""
    return LegalHold.objects.filter(released_at__isnull=True).filter(
        Q(conversation__isnull=True) | Q(conversation_id=record.conversation_id),
        Q(custodian__isnull=True)
        | Q(custodian_id__in=RecordPerson.objects.filter(record=record).values("user_id")),
        Q(date_from__isnull=True) | Q(date_from__lte=record.period_end),
        Q(date_to__isnull=True) | Q(date_to__gte=record.period_start),
    )


def record_is_held(record: RetentionRecord) -> bool:
    return _holds_covering(record).exists()


def purge_expired() -> Purge:
    """Delete the content of every record past its retention that no hold covers,
    then the live data purged records free and the restricted people whose
    records are all gone.

    The chain entry stays (hash and link) with a purge entry, and each purge is
    an audit event carrying the record's hash. One record per transaction, so a
    failure leaves every earlier purge complete.
    """
    purged = held = 0
    # The database's day, as the content-delete trigger sees it; an extension
    # keeps a record until the extension's day has passed as well.
    today = Cast(Now(), DateField())
    candidates = (
        RetentionRecord.objects.filter(retain_until__lt=today, purge__isnull=True)
        .exclude(extensions__retain_until__gte=today)
        .order_by("conversation_id", "seq")
        .values_list("pk", flat=True)
    )
    for record_id in list(candidates):
        with transaction.atomic():
            record = RetentionRecord.objects.get(pk=record_id)
            if record_is_held(record):
                held += 1
                continue
            PurgeEntry.objects.create(record=record, sha256=record.sha256)
            RecordContent.objects.filter(record=record).delete()
            index.unindex_record(record)
            # The referenced files' copies stay: other records may share them.
            archive_store.delete(archive_store.record_name(record))
            audit_event_record(
                kind=AuditEvent.Kind.RECORD_PURGED,
                actor=None,
                detail={
                    "record": record.pk,
                    "conversation": record.conversation_id,
                    "seq": record.seq,
                    "sha256": record.sha256,
                    "retain_until": record.retain_until.isoformat(),
                },
            )
            purged += 1
    # Every conversation whose purged prefix may cover live data, not only
    # today's: a hold released since the last run frees what it kept.
    live = purge_live(conversation_ids=live_purge_candidates())
    erased = erase_restricted()
    return Purge(purged=purged, held=held, messages=live.messages, files=live.files, people=erased)


# --- Live data after retention ----------------------------------------------------


@dataclass(frozen=True)
class LivePurge:
    messages: int = 0
    files: int = 0


def _held(conversation_id: int) -> Q | None:
    """Messages of the conversation that an active hold covers; None when no hold
    reaches it, ``Q()`` (everything) when one covers the whole conversation."""
    covered = Q(pk__in=[])
    for hold in LegalHold.objects.filter(released_at__isnull=True).filter(
        Q(conversation__isnull=True) | Q(conversation_id=conversation_id)
    ):
        criteria = Q()
        if hold.custodian_id is not None:
            criteria &= Q(author_id=hold.custodian_id) | Q(mentions__user_id=hold.custodian_id)
        if hold.date_from is not None:
            criteria &= Q(created_at__date__gte=hold.date_from)
        if hold.date_to is not None:
            criteria &= Q(created_at__date__lte=hold.date_to)
        if not criteria:
            return Q()
        covered |= criteria
    return covered


def _purged_prefix_end(conversation_id: int) -> int:
    """The last journal event of the longest run of purged records, from the
    chain's start, whose policies delete live data after retention."""
    end = 0
    records = (
        RetentionRecord.objects.filter(conversation_id=conversation_id)
        .order_by("seq")
        .values_list("last_event_id", "purge", "policy__purge_live")
    )
    for last_event_id, purge, purge_live in records.iterator():
        if purge is None or not purge_live:
            break
        end = last_event_id
    return end


def _delete_messages(message_ids: list[int]) -> tuple[int, int]:
    """Delete messages with their versions, reactions, mentions, attachments and
    journal events; then the files nothing holds any more."""
    if not message_ids:
        return 0, 0
    file_ids = list(
        MessageAttachment.objects.filter(message_id__in=message_ids).values_list("file_id", flat=True)
    )
    Message.objects.filter(reply_to_id__in=message_ids).update(reply_to=None)
    Event.objects.filter(message_id__in=message_ids).delete()
    for model in (MessageRevision, Reaction, Mention, MessageAttachment, MailNotification):
        model.objects.filter(message_id__in=message_ids).delete()
    _, by_model = Message.objects.filter(pk__in=message_ids).delete()
    deleted = by_model.get(Message._meta.label, 0)
    return deleted, files.files_delete_unattached(file_ids=file_ids)


def live_purge_candidates() -> list[int]:
    """Conversations whose chain starts with a purged record of a policy that
    deletes live data after retention."""
    return list(
        RetentionRecord.objects.filter(seq=1, purge__isnull=False, policy__purge_live=True)
        .order_by("conversation_id")
        .values_list("conversation_id", flat=True)
    )


def _company_days() -> Any:
    """Hold date ranges are company days (as records' periods are): compare
    messages' times in the company's time zone."""
    return timezone.override(ZoneInfo(settings.KONTOR_TIME_ZONE))


def purge_live(*, conversation_ids: list[int]) -> LivePurge:
    with _company_days():
        return _purge_live(conversation_ids)


def _purge_live(conversation_ids: list[int]) -> LivePurge:
    total_messages = total_files = 0
    for conversation_id in conversation_ids:
        with transaction.atomic():
            end = _purged_prefix_end(conversation_id)
            if not end:
                continue
            held = _held(conversation_id)
            if held is not None and not held:
                continue  # a hold covers the whole conversation
            later = Event.objects.filter(message=OuterRef("pk"), id__gt=end)
            doomed = Message.objects.filter(conversation_id=conversation_id).exclude(Exists(later))
            if held is not None:
                doomed = doomed.exclude(pk__in=Message.objects.filter(held).values("pk"))
            message_ids = list(doomed.values_list("pk", flat=True))
            # The journal of the purged range goes too (membership changes included).
            Event.objects.filter(conversation_id=conversation_id, id__lte=end, message__isnull=True).delete()
            messages, deleted_files = _delete_messages(message_ids)
            if messages or deleted_files:
                audit_event_record(
                    kind=AuditEvent.Kind.LIVE_PURGED,
                    actor=None,
                    detail={
                        "conversation": conversation_id,
                        "to_event": end,
                        "messages": messages,
                        "files": deleted_files,
                    },
                )
            total_messages += messages
            total_files += deleted_files
    return LivePurge(messages=total_messages, files=total_files)


# --- Erasure requests --------------------------------------------------------------


def _retained_until(user: User) -> date | None:
    """The last day any unpurged record naming ``user`` is kept (extensions included)."""
    records = RetentionRecord.objects.filter(
        purge__isnull=True, pk__in=RecordPerson.objects.filter(user=user).values("record_id")
    )
    own = records.aggregate(m=Max("retain_until"))["m"]
    extended = records.aggregate(m=Max("extensions__retain_until"))["m"]
    dates = [d for d in (own, extended) if d is not None]
    return max(dates) if dates else None


@transaction.atomic
def processing_restrict(
    *,
    actor: User,
    user_id: int,
    legal_basis: str = "",
    request: str = "",
    origin: Origin = Origin.NONE,
) -> User:
    """Take an erasure request while retention runs: restrict now, erase later.
    ``request`` is the request's reference (a ticket), ``origin`` where the act
    came from."""
    user = User.objects.select_for_update().get(pk=user_id)
    # Everything they took part in reaches the archive before anything is hidden.
    for conversation_id in user.memberships.values_list("conversation_id", flat=True):
        services.archive_conversation(conversation_id=conversation_id)
    if user.erased_at is not None:
        raise ValidationError(f"{user.email} was erased already.")
    if user.is_superuser:
        raise ValidationError("Take the administrator role away first.")
    user = user_processing_restrict(user=user)
    kept_until = _retained_until(user)
    # No record names them: no retention duty defers the erasure, which happens now.
    default_basis = DEFAULT_ERASURE_BASIS if kept_until else NOTHING_RETAINED_BASIS
    audit_event_record(
        kind=AuditEvent.Kind.PROCESSING_RESTRICTED,
        actor=actor,
        origin=origin,
        detail={
            "user": user.pk,
            "legal_basis": legal_basis.strip() or default_basis,
            "request": request.strip(),
            "retained_until": kept_until.isoformat() if kept_until else None,
        },
    )
    if kept_until is None:
        _erase(user, actor=actor, origin=origin, legal_basis=NOTHING_RETAINED_BASIS)
    return user


def _erase(
    user: User, *, actor: User | None, origin: Origin = Origin.NONE, legal_basis: str = RETENTION_ENDED_BASIS
) -> None:
    """Delete the person's live messages and reactions and anonymise the account;
    ``legal_basis`` is why now (the retention duty ended, or there was none)."""
    with _company_days():
        message_ids: list[int] = []
        mine = Message.objects.filter(author=user)
        for conversation_id in set(mine.values_list("conversation_id", flat=True)):
            held = _held(conversation_id)
            if held is not None and not held:
                continue  # a hold covers the whole conversation: its messages stay
            in_conversation = mine.filter(conversation_id=conversation_id)
            if held is not None:
                in_conversation = in_conversation.exclude(pk__in=Message.objects.filter(held).values("pk"))
            message_ids += in_conversation.values_list("pk", flat=True)
        messages, deleted_files = _delete_messages(message_ids)
    Reaction.objects.filter(user=user).delete()
    Mention.objects.filter(user=user).delete()
    # The email bridge's traces of them: queued notices and the log of their mail.
    MailNotification.objects.filter(user=user).delete()
    InboundMail.objects.filter(user=user).delete()
    user_anonymise(user=user)
    audit_event_record(
        kind=AuditEvent.Kind.PERSON_ERASED,
        actor=actor,
        origin=origin,
        detail={
            "user": user.pk,
            "messages": messages,
            "files": deleted_files,
            "legal_basis": legal_basis,
        },
    )


def erase_restricted() -> int:
    """Erase every restricted person whose records have all been purged and whom
    no active hold names."""
    erased = 0
    held = LegalHold.objects.filter(released_at__isnull=True, custodian=OuterRef("pk"))
    people = User.objects.filter(processing_restricted_at__isnull=False, erased_at__isnull=True).exclude(
        Exists(held)
    )
    for user in people:
        with transaction.atomic():
            if _retained_until(user) is None:
                _erase(user, actor=None)
                erased += 1
    return erased
