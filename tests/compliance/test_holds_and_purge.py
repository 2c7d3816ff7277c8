"""Retention ends, the purge removes content; a legal hold stops it."""

import io
from datetime import date, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from accounts.models import User
from compliance import lifecycle, records, services
from compliance.models import AuditEvent, PurgeEntry, RecordContent, RetentionRecord
from compliance.verification import verify
from messenger import services as chat
from messenger.models import Conversation

pytestmark = pytest.mark.django_db

LONG_AGO = date(2015, 12, 31)


@pytest.fixture
def expired(monkeypatch: pytest.MonkeyPatch) -> None:
    """Records made from now on are already past their retention (a test seam)."""
    monkeypatch.setattr(records, "retain_until", lambda policy, made_on: LONG_AGO)


def archived(author: User, conversation: Conversation, body: str) -> RetentionRecord:
    chat.message_send(actor=author, conversation_id=conversation.pk, body=body)
    record = services.snapshot_conversation(conversation_id=conversation.pk).record
    assert record is not None
    return record


def test_purge_removes_only_expired_content_keeps_the_chain_and_logs_the_hash(
    alice: User, dm: Conversation, expired: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = archived(alice, dm, "from long ago")
    monkeypatch.setattr(records, "retain_until", lambda policy, made_on: date.today() + timedelta(days=3650))
    young = archived(alice, dm, "still kept")

    result = lifecycle.purge_expired()

    assert (result.purged, result.held) == (1, 0)
    assert not RecordContent.objects.filter(record=old).exists()
    assert RecordContent.objects.filter(record=young).exists()
    assert PurgeEntry.objects.get(record=old).sha256 == old.sha256
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.RECORD_PURGED)
    assert event.detail["sha256"] == old.sha256
    report = verify()
    assert report.ok and report.purged == 1
    out = io.StringIO()
    call_command("verify_archive", stdout=out)
    assert "1 records purged after retention" in out.getvalue()
    assert lifecycle.purge_expired().purged == 0  # nothing twice


@pytest.mark.parametrize("scope", ["conversation", "custodian", "dates"])
def test_a_legal_hold_stops_the_purge(
    alice: User, bob: User, auditor: User, dm: Conversation, expired: None, scope: str
) -> None:
    record = archived(alice, dm, "evidence")
    scopes: dict[str, dict[str, Any]] = {
        "conversation": {"conversation": dm},
        "custodian": {"custodian": bob},
        "dates": {"date_from": record.period_start - timedelta(days=1), "date_to": record.period_end},
    }
    criteria = scopes[scope]
    hold = services.hold_set(actor=auditor, name="Tax audit 2026", reason="Betriebsprüfung", **criteria)

    result = lifecycle.purge_expired()

    assert (result.purged, result.held) == (0, 1)
    assert RecordContent.objects.filter(record=record).exists()
    services.hold_release(actor=auditor, hold_id=hold.pk, reason="Audit closed")
    assert lifecycle.purge_expired().purged == 1
    kinds = list(AuditEvent.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == ["hold_set", "hold_released", "record_purged"]


def test_a_hold_on_someone_else_does_not_stop_the_purge(
    alice: User, bob: User, charlie: User, auditor: User, dm: Conversation, expired: None
) -> None:
    archived(alice, dm, "not Charlie's")
    services.hold_set(actor=auditor, name="Case C", reason="Charlie's mails", custodian=charlie)

    assert lifecycle.purge_expired().purged == 1


def test_the_database_refuses_to_delete_held_or_unexpired_content(
    alice: User, auditor: User, dm: Conversation, expired: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = archived(alice, dm, "held")
    services.hold_set(actor=auditor, name="Court case 17 O 42/26", reason="Litigation", conversation=dm)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM compliance_recordcontent WHERE record_id = %s", [held.pk])

    other = chat.direct_open(actor=alice, other_user_id=auditor.pk)
    monkeypatch.setattr(records, "retain_until", lambda policy, made_on: date.today() + timedelta(days=1))
    young = archived(alice, other, "young")
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM compliance_recordcontent WHERE record_id = %s", [young.pk])

    assert RecordContent.objects.filter(record__in=[held, young]).count() == 2


def test_a_hold_needs_a_scope_a_name_and_a_reason(auditor: User) -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        services.hold_set(actor=auditor, name="Everything", reason="no scope")
    with pytest.raises(ValidationError):
        services.hold_set(actor=auditor, name=" ", reason="x", date_from=date(2026, 1, 1))
