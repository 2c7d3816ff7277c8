"""C2 (no cascade reaches a record), C17 (times from the database clock) and the
calendar-year clock in the company's time zone (C8)."""

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db.models import ProtectedError
from django.utils import timezone

from accounts.models import User
from compliance import records, services
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

    made_on = records.company_day(new_year_in_berlin)

    assert made_on == date(2027, 1, 1)
    assert records.retain_until(default, made_on) == date(2033, 12, 31)


def test_verification_names_a_changed_retention_date_a_removed_cursor_and_a_blanked_hmac(
    alice: User, bob: User, charlie: User, dm: Conversation, settings: Any
) -> None:
    from compliance.verification import verify
    from tests.compliance.test_snapshots import _without_guards

    settings.KONTOR_ARCHIVE_HMAC_KEY = "k" * 32
    first = _archived(alice, dm)
    second = _archived(alice, dm)
    other = chat.direct_open(actor=alice, other_user_id=charlie.pk)
    third = _archived(alice, other)
    assert verify().ok

    _without_guards(
        f"UPDATE compliance_retentionrecord SET retain_until = '2020-12-31' WHERE id = {first.pk}"
    )
    _without_guards(f"UPDATE compliance_retentionrecord SET hmac = '' WHERE id = {second.pk}")
    _without_guards(f"DELETE FROM compliance_snapshotcursor WHERE conversation_id = {other.pk}")

    problems = verify().problems
    assert any(f"record 1 (id {first.pk}): its retention date 2020-12-31" in p for p in problems)
    assert any(f"conversation {other.pk}: its records have no snapshot cursor" in p for p in problems)
    # The altered first record stops its chain's check; alone, the blanked HMAC shows too.
    _without_guards(
        f"UPDATE compliance_retentionrecord SET retain_until = '{third.retain_until}' WHERE id = {first.pk}"
    )
    assert any(f"record 2 (id {second.pk}): its HMAC was removed" in p for p in verify().problems)


def test_an_edit_archives_the_files_the_message_still_has(
    alice: User, dm: Conversation, file_storage: Any
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from archive import services as files

    stored = files.file_store(
        upload=SimpleUploadedFile("offer.txt", b"Offer 88"), name="offer.txt", uploader=alice
    )
    sent = chat.message_send(actor=alice, conversation_id=dm.pk, body="Offer", file_ids=[stored.pk])
    chat.message_edit(actor=alice, message_id=sent.message.pk, body="Offer (corrected)")
    record = services.snapshot_conversation(conversation_id=dm.pk).record
    assert record is not None

    versions = [e["revision"] for e in json.loads(record.content.canonical_json)["events"] if "revision" in e]
    assert [v["kind"] for v in versions] == ["created", "edited"]
    assert [f["sha256"] for f in versions[1]["files"]] == [stored.sha256]


def test_a_blanked_hmac_on_the_first_record_made_with_a_key_is_named(
    alice: User, dm: Conversation, settings: Any
) -> None:
    """With a key configured from the start, no record before tells the HMAC was
    there: the record says so itself, inside its hash."""
    from compliance.verification import verify
    from compliance.workspace.chain import records as chain_records
    from tests.compliance.test_snapshots import _without_guards

    settings.KONTOR_ARCHIVE_HMAC_KEY = "k" * 32
    only = _archived(alice, dm)
    assert json.loads(only.content.canonical_json)["keyed"] is True
    assert verify().ok

    _without_guards(f"UPDATE compliance_retentionrecord SET hmac = '' WHERE id = {only.pk}")

    assert (
        f"conversation {dm.pk}, record 1 (id {only.pk}): its HMAC was removed (it was made with a key)"
        in (verify().problems)
    )
    # The auditors' reader refuses it too, whether or not the key is still configured.
    settings.KONTOR_ARCHIVE_HMAC_KEY = ""
    [read] = chain_records.chain_read(RetentionRecord.objects.filter(pk=only.pk), chunk=10)
    assert "carries no HMAC although it was made with a key" in read.ref.problem


def test_records_made_without_a_key_need_no_hmac_once_one_is_configured(
    alice: User, dm: Conversation, settings: Any
) -> None:
    from compliance.verification import verify

    before = _archived(alice, dm)
    assert "keyed" not in json.loads(before.content.canonical_json)
    settings.KONTOR_ARCHIVE_HMAC_KEY = "k" * 32
    _archived(alice, dm)

    assert verify().ok
