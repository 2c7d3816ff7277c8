"""Snapshots of the journal into chained, unchangeable retention records."""

import io
import json
from datetime import date
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction

from accounts.models import User
from compliance import records, services, tasks
from compliance.models import GENESIS_HASH, RecordContent, RetentionPolicy, RetentionRecord
from compliance.verification import verify
from messenger import services as chat
from messenger.models import Conversation, Event

pytestmark = pytest.mark.django_db


def archived_events() -> list[int]:
    ids: list[int] = []
    for content in RecordContent.objects.order_by("record__conversation_id", "record__seq"):
        ids += [e["id"] for e in json.loads(content.canonical_json)["events"]]
    return ids


def test_a_snapshot_archives_every_version_of_a_message(alice: User, dm: Conversation) -> None:
    sent = chat.message_send(actor=alice, conversation_id=dm.pk, body="Preis: 1.200 EUR")
    chat.message_edit(actor=alice, message_id=sent.message.pk, body="Preis: 1.100 EUR")
    chat.message_delete(actor=alice, message_id=sent.message.pk)

    record = services.snapshot_conversation(conversation_id=dm.pk).record

    assert record is not None
    payload = json.loads(record.content.canonical_json)
    versions = [(e["revision"]["kind"], e["revision"]["body"]) for e in payload["events"] if "revision" in e]
    assert versions == [
        ("created", "Preis: 1.200 EUR"),
        ("edited", "Preis: 1.100 EUR"),
        ("deleted", "Preis: 1.100 EUR"),
    ]
    assert payload["people"][str(alice.pk)]["email"] == alice.email
    assert record.sha256 == records.record_hash(record.content.canonical_json.encode())
    assert record.previous_hash == GENESIS_HASH


def test_changes_after_archiving_leave_the_archived_version_intact(alice: User, dm: Conversation) -> None:
    sent = chat.message_send(actor=alice, conversation_id=dm.pk, body="Original offer")
    first = services.snapshot_conversation(conversation_id=dm.pk).record
    chat.message_edit(actor=alice, message_id=sent.message.pk, body="Changed offer")
    chat.message_delete(actor=alice, message_id=sent.message.pk)
    second = services.snapshot_conversation(conversation_id=dm.pk).record

    assert first is not None and second is not None
    assert "Original offer" in RecordContent.objects.get(record=first).canonical_json
    assert second.previous_hash == first.sha256
    assert second.seq == 2
    assert verify().ok


def test_every_journal_event_is_in_exactly_one_record_even_when_snapshots_repeat(
    alice: User, bob: User, dm: Conversation
) -> None:
    for n in range(5):
        chat.message_send(actor=alice if n % 2 else bob, conversation_id=dm.pk, body=f"m{n}")
        services.snapshot_conversation(conversation_id=dm.pk)
        services.snapshot_conversation(conversation_id=dm.pk)  # a duplicate delivery
    tasks.snapshot_conversation(dm.pk)

    journal = list(Event.objects.filter(conversation=dm).order_by("id").values_list("id", flat=True))
    assert archived_events() == journal
    assert list(RetentionRecord.objects.filter(conversation=dm).values_list("seq", flat=True)) == [
        1,
        2,
        3,
        4,
        5,
    ]


def test_snapshot_due_finds_only_conversations_that_moved(alice: User, bob: User, charlie: User) -> None:
    first = chat.direct_open(actor=alice, other_user_id=bob.pk)
    second = chat.direct_open(actor=alice, other_user_id=charlie.pk)
    services.snapshot_conversation(conversation_id=first.pk)
    services.snapshot_conversation(conversation_id=second.pk)
    chat.message_send(actor=alice, conversation_id=second.pk, body="new")

    assert services.conversations_due() == [second.pk]


def test_retention_runs_from_the_end_of_the_calendar_year() -> None:
    letters = RetentionPolicy.objects.get(is_default=True)
    broker = RetentionPolicy.objects.get(name__contains="Broker")

    assert (letters.years, letters.from_year_end) == (6, True)
    assert records.retain_until(letters, date(2026, 3, 5)) == date(2032, 12, 31)
    assert records.retain_until(letters, date(2026, 12, 31)) == date(2032, 12, 31)
    assert records.retain_until(broker, date(2026, 3, 5)) == date(2032, 3, 5)
    assert records.retain_until(broker, date(2024, 2, 29)) == date(2030, 2, 28)


def test_canonical_json_is_sorted_compact_utf8_and_refuses_floats() -> None:
    assert records.canonical_json({"b": 1, "a": "Grüße"}) == '{"a":"Grüße","b":1}'.encode()
    with pytest.raises(TypeError):
        records.canonical_json({"amount": 1.5})


def _snapshotted(alice: User, dm: Conversation) -> RetentionRecord:
    chat.message_send(actor=alice, conversation_id=dm.pk, body="archived")
    record = services.snapshot_conversation(conversation_id=dm.pk).record
    assert record is not None
    return record


def test_the_orm_cannot_change_or_delete_a_record(alice: User, dm: Conversation) -> None:
    record = _snapshotted(alice, dm)

    with pytest.raises(IntegrityError), transaction.atomic():
        RetentionRecord.objects.filter(pk=record.pk).update(sha256="0" * 64)
    with pytest.raises(IntegrityError), transaction.atomic():
        RecordContent.objects.filter(record=record).update(canonical_json="{}")
    with pytest.raises(IntegrityError), transaction.atomic():
        RecordContent.objects.filter(record=record).delete()
    with pytest.raises(IntegrityError), transaction.atomic():
        RetentionRecord.objects.filter(pk=record.pk).delete()
    with pytest.raises(Exception, match="cannot be"):
        record.save()
    assert verify().ok


def test_raw_sql_cannot_change_or_delete_a_record(alice: User, dm: Conversation) -> None:
    record = _snapshotted(alice, dm)

    for sql in (
        "UPDATE compliance_retentionrecord SET retain_until = '2000-01-01'",
        "UPDATE compliance_recordcontent SET canonical_json = '{}'",
        "DELETE FROM compliance_recordcontent",
        "DELETE FROM compliance_retentionrecord",
    ):
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    if connection.vendor == "postgresql":
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute("UPDATE compliance_retentionrecord SET retain_until = '2000-01-01'")
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("TRUNCATE compliance_retentionrecord CASCADE")
    record.refresh_from_db()
    assert record.retain_until > date.today()


def _without_guards(sql: str) -> None:
    """What a database superuser could do: switch the triggers off and write."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending events block ALTER TABLE
            for table in (
                "compliance_recordcontent",
                "compliance_recordperson",
                "compliance_retentionrecord",
            ):
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
            cursor.execute(sql)  # the test's rollback switches them on again
        else:
            cursor.execute("PRAGMA foreign_keys = OFF")
            names = [
                row[0]
                for row in cursor.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name LIKE 'compliance_%'"
                ).fetchall()
            ]
            for name in names:
                cursor.execute(f"DROP TRIGGER {name}")
            cursor.execute(sql)


def test_verify_archive_names_an_altered_record(alice: User, dm: Conversation) -> None:
    record = _snapshotted(alice, dm)
    tampered = record.content.canonical_json.replace("archived", "harmless")
    _without_guards(
        f"UPDATE compliance_recordcontent SET canonical_json = '{tampered}' WHERE record_id = {record.pk}"
    )

    with pytest.raises(CommandError, match="BROKEN"):
        call_command("verify_archive", stdout=io.StringIO(), stderr=(err := io.StringIO()))
    assert f"conversation {dm.pk}, record 1" in err.getvalue()
    assert "altered" in err.getvalue()


def test_verify_archive_notices_a_removed_record_and_a_removed_chain(
    alice: User, bob: User, charlie: User, dm: Conversation
) -> None:
    _snapshotted(alice, dm)
    chat.message_send(actor=alice, conversation_id=dm.pk, body="second")
    middle = services.snapshot_conversation(conversation_id=dm.pk).record
    chat.message_send(actor=alice, conversation_id=dm.pk, body="third")
    services.snapshot_conversation(conversation_id=dm.pk)
    other = chat.direct_open(actor=alice, other_user_id=charlie.pk)
    services.snapshot_conversation(conversation_id=other.pk)
    assert middle is not None
    _without_guards(f"DELETE FROM compliance_recordcontent WHERE record_id = {middle.pk}")
    _without_guards(f"DELETE FROM compliance_recordperson WHERE record_id = {middle.pk}")
    _without_guards(f"DELETE FROM compliance_archivedmessage WHERE record_id = {middle.pk}")
    _without_guards(f"DELETE FROM compliance_retentionrecord WHERE id = {middle.pk}")
    _without_guards(
        "DELETE FROM compliance_recordcontent WHERE record_id IN "
        f"(SELECT id FROM compliance_retentionrecord WHERE conversation_id = {other.pk})"
    )
    _without_guards(
        "DELETE FROM compliance_recordperson WHERE record_id IN "
        f"(SELECT id FROM compliance_retentionrecord WHERE conversation_id = {other.pk})"
    )
    _without_guards(f"DELETE FROM compliance_archivedmessage WHERE conversation_id = {other.pk}")
    _without_guards(f"DELETE FROM compliance_retentionrecord WHERE conversation_id = {other.pk}")

    report = verify()

    assert not report.ok
    assert any(
        f"conversation {dm.pk}, record 3" in p and "missing or reordered" in p for p in report.problems
    )
    assert any(f"conversation {other.pk}" in p and "missing" in p for p in report.problems)


def test_verify_archive_reports_an_intact_archive(alice: User, dm: Conversation) -> None:
    _snapshotted(alice, dm)
    out = io.StringIO()

    call_command("verify_archive", stdout=out)

    assert "Archive intact: 1 chains, 1 records" in out.getvalue()


def test_the_system_check_fails_when_a_guard_is_missing_or_not_always_on() -> None:
    from compliance.checks import archive_guards

    assert archive_guards(databases=["default"]) == []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE compliance_auditevent ENABLE TRIGGER compliance_auditevent_no_update")
        else:
            cursor.execute("DROP TRIGGER compliance_auditevent_no_update")
    problems = archive_guards(databases=["default"])

    assert [p.id for p in problems] == [
        "compliance.E002" if connection.vendor == "postgresql" else "compliance.E001"
    ]
    assert "compliance_auditevent_no_update" in problems[0].msg


def test_beat_runs_the_snapshot_sweep_every_minute() -> None:
    from django.conf import settings

    from config.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["compliance-snapshot-due"]
    assert (entry["task"], entry["schedule"]) == ("compliance.snapshot_due", 60.0)
    assert "compliance.snapshot_due" in app.tasks
    assert "compliance.snapshot_conversation" in app.tasks


def test_the_admin_shows_records_to_auditors_only_and_changes_nothing(
    alice: User, auditor: User, dm: Conversation, django_user_model: type[User]
) -> None:
    from django.contrib.auth.models import Group
    from django.test import Client

    record = _snapshotted(alice, dm)
    root = django_user_model.objects.create_superuser(email="root@kontor.example", password="x-very-long-1")
    auditor.is_staff = True  # an auditor who may open the admin
    auditor.save(update_fields=["is_staff"])
    assert auditor.groups.filter(name=Group.objects.get(name="Auditors").name).exists()
    superuser, reviewer = Client(), Client()
    superuser.force_login(root)
    reviewer.force_login(auditor)

    # A superuser without the auditor role sees nothing of the archive.
    assert superuser.get("/admin/compliance/retentionrecord/").status_code == 403
    index = superuser.get("/admin/").content
    assert b"/admin/compliance/retentionrecord/" not in index
    assert b"/admin/compliance/auditevent/" not in index
    # An auditor sees it, read-only.
    assert reviewer.get("/admin/compliance/retentionrecord/").status_code == 200
    page = reviewer.get(f"/admin/compliance/retentionrecord/{record.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert (
        reviewer.post(f"/admin/compliance/retentionrecord/{record.pk}/change/", {"seq": 9}).status_code == 403
    )
    assert (
        reviewer.post(f"/admin/compliance/retentionrecord/{record.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    record.refresh_from_db()
    assert record.seq == 1


def test_reconciliation_archives_what_the_sweep_missed_and_alerts(
    alice: User, bob: User, dm: Conversation, settings: Any, mailoutbox: list[Any]
) -> None:
    from datetime import timedelta

    settings.KONTOR_COMPLIANCE_CONTACTS = ["compliance@kontor.example"]
    chat.message_send(actor=alice, conversation_id=dm.pk, body="never swept")

    result = services.reconcile(older_than=timedelta(seconds=-60))  # everything counts as late

    journal = list(Event.objects.filter(conversation=dm).order_by("id").values_list("id", flat=True))
    assert result.missing_events == len(journal) == 4
    assert result.conversations == [dm.pk]
    assert archived_events() == journal
    assert "4 journal event(s)" in mailoutbox[0].body
    assert mailoutbox[0].to == ["compliance@kontor.example"]
    assert services.reconcile(older_than=timedelta(seconds=-60)).missing_events == 0


def test_reconciliation_leaves_fresh_events_to_the_sweep(alice: User, dm: Conversation) -> None:
    chat.message_send(actor=alice, conversation_id=dm.pk, body="just now")

    assert services.reconcile().missing_events == 0
    assert not RetentionRecord.objects.exists()
