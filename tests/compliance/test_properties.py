"""C2 (no cascade reaches a record), C17 (times from the database clock) and the
calendar-year clock in the company's time zone (C8)."""

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db.models import ProtectedError
from django.utils import timezone

from accounts.models import User
from compliance import services
from compliance.models import RecordContent, RetentionPolicy, RetentionRecord
from messenger import services as chat
from messenger.models import Conversation

pytestmark = pytest.mark.django_db


def _archived(author: User, conversation: Conversation) -> RetentionRecord:
    chat.message_send(actor=author, conversation_id=conversation.pk, body="Auftrag 2026-88 bestätigt")
    record = services.snapshot_conversation(conversation_id=conversation.pk).record
    assert record is not None
    return record


def test_deleting_a_person_or_a_conversation_never_reaches_a_record(alice: User, dm: Conversation) -> None:
    record = _archived(alice, dm)

    with pytest.raises(ProtectedError):
        alice.delete()
    with pytest.raises(ProtectedError):
        dm.delete()

    assert RetentionRecord.objects.filter(pk=record.pk).exists()
    assert RecordContent.objects.filter(record=record).exists()


def test_record_times_come_from_the_database_clock(
    alice: User, dm: Conversation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server (or a client) with a wrong clock cannot date the archive.
    monkeypatch.setattr(timezone, "now", lambda: datetime(2001, 1, 1, tzinfo=UTC))

    record = _archived(alice, dm)

    record.refresh_from_db()
    real_now = datetime.now(UTC)
    assert abs(record.created_at - real_now) < timedelta(minutes=5)
    events = json.loads(record.content.canonical_json)["events"]
    assert all(abs(datetime.fromisoformat(e["at"]) - real_now) < timedelta(minutes=5) for e in events)
    assert record.period_end.year >= 2026


def test_the_calendar_year_is_the_companys_not_utcs() -> None:
    default = RetentionPolicy.objects.get(is_default=True)
    new_year_in_berlin = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # 00:30 on 1 January 2027

    made_on = services.company_day(new_year_in_berlin)

    assert made_on == date(2027, 1, 1)
    assert services.retain_until(default, made_on) == date(2033, 12, 31)
