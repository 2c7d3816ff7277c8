"""Offboarding: the leaver loses access at once, and nothing they wrote is lost.

``offboard`` does it all in one transaction, and doing it twice is harmless (the
second call returns the first report and changes nothing):

1. Every conversation they were ever in is snapshotted: the archive catches up
   before anything changes, without holding the journal lock yet.
2. The account closes: ``is_active`` off, ``offboarded_at`` (database clock)
   and ``offboarded_by``; MFA authenticators, stored SSO tokens and pending
   invitations (sent by them, or to them) are revoked; every session ends.
3. Their groups and channels pass to the successor and their memberships end
   (``messenger.services.leaver_remove``); they stay listed as former members,
   their messages and files stay readable, direct conversations with them stay
   readable but take no new messages.
4. The same conversations are snapshotted again, so the archive reaches the
   moment of leaving, hand-over included.
5. An optional legal hold names them as custodian; the immutable, hashed
   ``OffboardingReport`` and an audit event are written.

Once it commits, each of their open sockets gets ``{"type": "account_disabled"}``
and is closed (through the channel layer group ``user.<id>``).

With ``effective_at`` in the future, ``offboard`` only schedules it;
``offboard_due`` (Celery beat, every minute) carries it out at that time.

Lock order, to stay free of deadlocks: the person's row, then their scheduled
offboarding, then (inside ``leaver_remove``) conversations in id order, then the
journal; snapshot cursors are taken only by ``snapshot_conversation``.

This module (until issue 17 ``accounts.offboarding``) sits above the domain
apps and writes none of their tables: accounts, messenger, compliance and
archive each make their own changes through their services, and it reads
through their selectors.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Now
from django.utils import timezone

from accounts import selectors as people
from accounts import services as accounts
from accounts.models import User
from archive import selectors as files
from compliance import lifecycle
from compliance import selectors as compliance_selectors
from compliance import services as compliance
from compliance.audit import Origin, audit_event_record
from compliance.models import AuditEvent, LegalHold
from compliance.records import canonical_json, record_hash
from hr.models import OffboardingReport, ScheduledOffboarding
from hr.selectors import default_successor, report_of
from messenger import selectors as chat_selectors
from messenger import services as chat
from messenger.errors import MessengerError
from messenger.events import notify_on_commit, user_group
from messenger.models import Conversation

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hold:
    """A legal hold to set on the leaver as custodian."""

    reason: str
    name: str = ""


@dataclass(frozen=True)
class Outcome:
    """Either the report of an offboarding done now, or the scheduled one."""

    report: OffboardingReport | None = None
    scheduled: ScheduledOffboarding | None = None


def offboard(
    *,
    actor: User,
    user_id: int,
    successor_id: int | None = None,
    effective_at: datetime | None = None,
    hold: Hold | None = None,
    origin: Origin = Origin.NONE,
) -> Outcome:
    """Offboard a person now, or schedule it for ``effective_at``.

    Without ``successor_id`` the department head takes over; without one
    either, each group or channel passes to its longest-standing member (and a
    conversation nobody else could own is refused with a ``ValidationError``).
    ``origin`` (the request's address and browser) goes into the audit event.
    """
    if effective_at is not None and effective_at > timezone.now():
        return _schedule(
            actor=actor, user_id=user_id, successor_id=successor_id, effective_at=effective_at, hold=hold
        )
    return Outcome(
        report=_offboard_now(
            actor=actor, user_id=user_id, successor_id=successor_id, hold=hold, origin=origin
        )
    )


def _check_leaver(actor: User, user: User) -> None:
    if user.pk == actor.pk:
        raise ValidationError("You cannot offboard yourself.")
    if user.is_superuser:
        raise ValidationError(f"{user.email} is an administrator: take that role away first.")
    if user.erased_at is not None:
        raise ValidationError(f"{user.email} was erased already.")


def _successor(user: User, successor_id: int | None) -> User | None:
    if successor_id is None:
        return default_successor(user)
    successor = people.user_find(user_id=successor_id)
    if successor is None or not successor.is_active or successor.pk == user.pk:
        raise ValidationError(
            {"successor": "The successor must be an active colleague other than the leaver."}
        )
    return successor


@transaction.atomic
def _schedule(
    *, actor: User, user_id: int, successor_id: int | None, effective_at: datetime, hold: Hold | None
) -> Outcome:
    user = accounts.user_lock(user_id=user_id)
    if user.offboarded_at is not None:
        return Outcome(report=report_of(user=user))
    _check_leaver(actor, user)
    successor = _successor(user, successor_id)
    # One pending offboarding per person: scheduling again moves it.
    scheduled, _ = ScheduledOffboarding.objects.update_or_create(
        user=user,
        done_at=None,
        cancelled_at=None,
        defaults={
            "effective_at": effective_at,
            "successor": successor,
            "hold_reason": hold.reason.strip() if hold else "",
            "requested_by": actor,
            "error": "",
        },
    )
    return Outcome(scheduled=scheduled)


@transaction.atomic
def scheduled_cancel(*, actor: User, scheduled_id: int) -> ScheduledOffboarding:
    """Call off a pending offboarding (one that ran or was called off stays as it is)."""
    ScheduledOffboarding.objects.filter(pk=scheduled_id, done_at=None, cancelled_at=None).update(
        cancelled_at=Now(), cancelled_by=actor
    )
    return ScheduledOffboarding.objects.get(pk=scheduled_id)


def offboard_due() -> int:
    """Carry out every scheduled offboarding whose time has come (Celery beat,
    every minute); returns how many were done. Each is its own transaction; one
    that fails keeps its error on the row and is tried again next time.

    A duplicate run does nothing twice: the person's row lock serialises the
    runs, and an offboarded person's second run returns the first report."""
    done = 0
    due = ScheduledOffboarding.objects.filter(
        done_at__isnull=True, cancelled_at__isnull=True, effective_at__lte=Now()
    ).values_list("pk", "user_id")
    for scheduled_id, user_id in list(due):
        try:
            if _offboard_scheduled(scheduled_id=scheduled_id, user_id=user_id) is not None:
                done += 1
        except ValidationError as error:
            message = "; ".join(error.messages)
            logger.warning("Scheduled offboarding %s failed: %s", scheduled_id, message)
            ScheduledOffboarding.objects.filter(pk=scheduled_id, done_at=None).update(error=message)
    return done


@transaction.atomic
def _offboard_scheduled(*, scheduled_id: int, user_id: int) -> OffboardingReport | None:
    accounts.user_lock(user_id=user_id)  # lock order: person, then schedule
    scheduled = (
        ScheduledOffboarding.objects.select_for_update()
        .filter(pk=scheduled_id, done_at=None, cancelled_at=None, effective_at__lte=Now())
        .first()
    )
    if scheduled is None:
        return None  # called off, or done by another run meanwhile
    successor = scheduled.successor
    if successor is not None and not successor.is_active:
        successor = None  # left in the meantime: the department head takes over
    return _offboard_now(
        actor=scheduled.requested_by,
        user_id=user_id,
        successor_id=successor.pk if successor else None,
        hold=Hold(reason=scheduled.hold_reason) if scheduled.hold_reason else None,
        scheduled=scheduled,
    )


@transaction.atomic
def _offboard_now(
    *,
    actor: User,
    user_id: int,
    successor_id: int | None,
    hold: Hold | None,
    scheduled: ScheduledOffboarding | None = None,
    origin: Origin = Origin.NONE,
) -> OffboardingReport:
    # The row lock serialises offboardings of one person: a second one waits,
    # then finds the account closed and returns the first report.
    user = accounts.user_lock(user_id=user_id)
    if user.offboarded_at is not None:
        existing = report_of(user=user)
        if existing is not None:
            _finish_schedules(user, existing)
            return existing
        raise ValidationError(f"{user.email} was offboarded before Kontor wrote reports.")
    _check_leaver(actor, user)
    if hold is not None and not hold.reason.strip():
        raise ValidationError({"hold_reason": "A legal hold needs a reason."})
    successor = _successor(user, successor_id)
    conversation_ids = chat_selectors.leaver_summary(user=user).conversation_ids
    records_before = compliance_selectors.records_count(conversation_ids=conversation_ids)
    _archive(conversation_ids)

    accounts.user_deactivate(user=user, actor=actor)
    # Registered before the membership changes, so that after the commit their
    # sockets get it first; the consumer closes and drops whatever follows.
    notify_on_commit(user_group(user.pk), "account.disabled", {})
    access = accounts.user_access_revoke(user=user)
    try:
        departures = chat.leaver_remove(actor=actor, leaver=user, successor=successor)
    except MessengerError as error:
        raise ValidationError(error.detail) from None
    _archive(conversation_ids)

    legal_hold = None
    if hold is not None:
        legal_hold = compliance.hold_set(
            actor=actor,
            name=hold.name.strip() or f"Offboarding of {user.email}",
            reason=hold.reason,
            custodian=user,
        )
    report = _write_report(
        user=user,
        actor=actor,
        successor=successor,
        conversation_ids=conversation_ids,
        departures=departures,
        access=access,
        hold=legal_hold,
        records_before=records_before,
        scheduled=scheduled,
    )
    audit_event_record(
        kind=AuditEvent.Kind.OFFBOARDED,
        actor=actor,
        origin=origin,
        detail={
            "user": user.pk,
            "email": user.email,
            "report": report.pk,
            "sha256": report.sha256,
            "successor": successor.pk if successor else None,
            "hold": legal_hold.pk if legal_hold else None,
            "scheduled": scheduled.pk if scheduled else None,
        },
    )
    _finish_schedules(user, report)
    return report


def _archive(conversation_ids: list[int]) -> None:
    """Snapshot each conversation until its journal is archived to the end."""
    for conversation_id in conversation_ids:
        compliance.archive_conversation(conversation_id=conversation_id)


def _finish_schedules(user: User, report: OffboardingReport) -> None:
    ScheduledOffboarding.objects.filter(user=user, done_at=None, cancelled_at=None).update(
        done_at=Now(), report=report, error=""
    )


def _head_entry(head: compliance_selectors.ChainHead | None) -> dict[str, Any] | None:
    if head is None:
        return None
    return {"record": head.record, "seq": head.seq, "sha256": head.sha256, "last_event": head.last_event}


def _person(user: User | None) -> dict[str, Any] | None:
    # Not compliance.records.person_entry: the report's format
    # (kontor.offboarding-report/1, hashed and kept) names the job title, which
    # the page and the PDF show, and not the active/external flags; a change
    # would need a new format version.
    if user is None:
        return None
    return {
        "id": user.pk,
        "name": user.display_name or user.email,
        "email": user.email,
        "department": user.department.name if user.department else None,
        "job_title": user.job_title,
    }


def _write_report(
    *,
    user: User,
    actor: User,
    successor: User | None,
    conversation_ids: list[int],
    departures: list[chat.Departure],
    access: dict[str, int],
    hold: LegalHold | None,
    records_before: int,
    scheduled: ScheduledOffboarding | None,
) -> OffboardingReport:
    assert user.offboarded_at is not None
    left_now = {d.conversation_id: d for d in departures}
    # Read after the departures: those left now are told apart by left_now.
    left_behind = chat_selectors.leaver_summary(user=user)
    conversations = {pk: left_behind.conversations[pk] for pk in conversation_ids}
    former = {pk: left_behind.left_at[pk] for pk in conversation_ids if pk not in left_now}
    heads = compliance_selectors.chain_heads(conversation_ids=conversation_ids)
    partners = left_behind.partners
    entries = []
    for conversation_id in conversation_ids:
        conversation = conversations[conversation_id]
        name = str(conversation)
        if conversation.kind == Conversation.Kind.DIRECT:
            name = "Direct with " + (", ".join(sorted(partners.get(conversation_id, []))) or "themselves")
        departure = left_now.get(conversation_id)
        head = heads.get(conversation_id)
        left_before = former.get(conversation_id)
        entries.append(
            {
                "id": conversation_id,
                "kind": conversation.kind,
                "name": name,
                "left": "offboarding" if departure else (left_before.isoformat() if left_before else None),
                "was_owner": bool(departure and departure.was_owner),
                "new_owner": departure.new_owner_id if departure else None,
                "left_event": departure.event_id if departure else None,
                "records": head.records if head else 0,
                "head": (
                    {
                        "record": head.record,
                        "seq": head.seq,
                        "sha256": head.sha256,
                        "last_event": head.last_event,
                    }
                    if head
                    else None
                ),
            }
        )
    file_bytes = files.files_size(file_ids=left_behind.file_ids)
    total_records = sum(head.records for head in heads.values())
    kinds = [conversations[i].kind for i in conversation_ids]
    payload: dict[str, Any] = {
        "format": OffboardingReport.FORMAT,
        "person": _person(user),
        "offboarded_at": user.offboarded_at.isoformat(),
        "offboarded_by": _person(actor),
        "successor": _person(successor),
        "scheduled": (
            {
                "id": scheduled.pk,
                "requested_by": scheduled.requested_by_id,
                "requested_at": scheduled.requested_at.isoformat(),
                "effective_at": scheduled.effective_at.isoformat(),
            }
            if scheduled
            else None
        ),
        "access": access,
        "conversations": entries,
        "counts": {
            "conversations": len(conversation_ids),
            "left_now": len(departures),
            "direct": kinds.count(Conversation.Kind.DIRECT),
            "groups": kinds.count(Conversation.Kind.GROUP),
            "channels": kinds.count(Conversation.Kind.CHANNEL),
            "handed_over": sum(1 for d in departures if d.new_owner_id is not None),
            "messages": left_behind.messages,
            "messages_deleted": left_behind.messages_deleted,
            "files": len(left_behind.file_ids),
            "file_bytes": file_bytes,
            "records": total_records,
            "records_written": total_records - records_before,
            "records_naming_person": compliance_selectors.records_naming_count(user_id=user.pk),
        },
        "hold": (
            {"id": hold.pk, "name": hold.name, "reason": hold.reason, "set_at": hold.set_at.isoformat()}
            if hold
            else None
        ),
    }
    content = canonical_json(payload)
    return OffboardingReport.objects.create(
        user=user,
        offboarded_at=user.offboarded_at,
        offboarded_by=actor,
        successor=successor,
        hold=hold,
        conversations=len(conversation_ids),
        messages=payload["counts"]["messages"],
        files=payload["counts"]["files"],
        records=total_records,
        canonical_json=content.decode("utf-8"),
        sha256=record_hash(content),
    )


@transaction.atomic
def reactivate(*, actor: User, user_id: int, reason: str, origin: Origin = Origin.NONE) -> User:
    """Someone returns: the account opens again and their direct conversations
    with it. History is not touched: the report, the records, the journal and
    the ownership hand-over stay as they are; owners add them to groups and
    channels again. They sign in with their old password (or reset it) and
    enrol MFA anew, since offboarding removed their authenticators."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why the person returns."})
    user = accounts.user_lock(user_id=user_id)
    if user.offboarded_at is None:
        raise ValidationError(f"{user.email} is not offboarded.")
    if user.processing_restricted_at is not None or user.erased_at is not None:
        raise ValidationError(f"{user.email} asked for erasure: their account cannot be reopened.")
    report = report_of(user=user)
    offboarded_at = user.offboarded_at
    accounts.user_reactivate(user=user)
    rejoined = chat.returner_rejoin_direct(actor=actor, user=user)
    audit_event_record(
        kind=AuditEvent.Kind.REACTIVATED,
        actor=actor,
        origin=origin,
        detail={
            "user": user.pk,
            "email": user.email,
            "reason": reason.strip(),
            "offboarded_at": offboarded_at.isoformat(),
            "report": report.pk if report else None,
            "direct_conversations": rejoined,
        },
    )
    return user


@transaction.atomic
def processing_restrict(*, actor: User, user_id: int, request: str, legal_basis: str = "") -> User:
    """An erasure request while retention runs (GDPR Art. 17(3)(b), 18): the
    compliance lifecycle restricts the person (archive first, then hidden from
    chat, directory and search, erased when retention ends); here their
    sessions and open sockets end too, since the account closes."""
    if not request.strip():
        raise ValidationError({"request": "Give the reference of the erasure request."})
    user = lifecycle.processing_restrict(
        actor=actor, user_id=user_id, legal_basis=legal_basis, request=request
    )
    accounts.sessions_end(user_id=user.pk)
    notify_on_commit(user_group(user.pk), "account.disabled", {})
    return user
