"""Reconstruction: a conversation as it stood at a moment, rebuilt from the
retention records alone; its archived files; the chain badge; and the audit
trail of every look."""

import hashlib
import io
import os
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.core.files.storage import default_storage
from django.db import connection
from django.template import loader
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from accounts import roles
from accounts.models import User
from archive import services as files
from archive.models import StoredFile
from compliance import archive_store, lifecycle, records, services
from compliance.models import AuditEvent, Case, RetentionRecord
from compliance.workspace import cases, chain
from compliance.workspace.reconstruct import MessageHistory, Reconstruction, reconstruct
from compliance.workspace.reconstruct import replay as reconstruct_replay
from compliance.workspace.views.reconstruct import parse_moment
from messenger import services as chat
from messenger.models import (
    Conversation,
    Event,
    Mention,
    Message,
    MessageAttachment,
    MessageRevision,
    Reaction,
)
from tests.compliance.workspace.tamper import alter_archive_copy, without_guards
from tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("file_storage")]

BROWSER = "AuditBrowser/2.0"
ADDRESS = "198.51.100.23"


# --- The cast and the archive ---------------------------------------------------------


@pytest.fixture
def auditor_mfa(auditor: User) -> User:
    """The auditor with an authenticator app: the workspace lets them in."""
    TOTP.activate(auditor, generate_totp_secret())
    return auditor


@pytest.fixture
def case(auditor_mfa: User) -> Case:
    return cases.case_open(actor=auditor_mfa, name="Tax audit 2026", legal_basis="AO §147, Betriebsprüfung")


@pytest.fixture
def browser(auditor_mfa: User) -> Client:
    client = Client(headers={"user-agent": BROWSER}, REMOTE_ADDR=ADDRESS)
    client.force_login(auditor_mfa)
    return client


def archive(conversation: Conversation) -> list[RetentionRecord]:
    """Snapshot the conversation until its whole journal is in records."""
    written = []
    while (record := services.snapshot_conversation(conversation_id=conversation.pk).record) is not None:
        written.append(record)
    return written


def tick() -> datetime:
    """A moment strictly between what happened before and what comes after
    (the database clock has millisecond steps on SQLite)."""
    time.sleep(0.01)
    moment = datetime.now().astimezone()
    time.sleep(0.01)
    return moment


def by_seq(result: Reconstruction) -> dict[int, MessageHistory]:
    return {m.seq: m for m in result.messages}


def bodies(message: MessageHistory) -> list[tuple[str, str]]:
    return [(v.kind, v.body) for v in message.versions]


def delete_live_chat(conversation: Conversation) -> None:
    """Remove the conversation's messages and their journal from the live
    tables, as a live purge after retention does: only the archive is left."""
    message_ids = list(Message.objects.filter(conversation=conversation).values_list("pk", flat=True))
    Message.objects.filter(pk__in=message_ids).update(reply_to=None)
    Event.objects.filter(message_id__in=message_ids).delete()
    for model in (MessageRevision, Reaction, Mention, MessageAttachment):
        model.objects.filter(message_id__in=message_ids).delete()
    Message.objects.filter(pk__in=message_ids).delete()


def two_records(author: User, conversation: Conversation) -> tuple[RetentionRecord, RetentionRecord]:
    """A message archived in one record, then another in the next."""
    chat.message_send(actor=author, conversation_id=conversation.pk, body="eins")
    first = archive(conversation)[0]
    chat.message_send(actor=author, conversation_id=conversation.pk, body="zwei")
    return first, archive(conversation)[-1]


def page_url(case: Case, conversation: Conversation, **params: Any) -> str:
    base = reverse("compliance:conversation", args=[case.pk, conversation.pk])
    return base + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def views() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(kind=AuditEvent.Kind.VIEWED).order_by("pk"))


# --- What the reconstruction shows ----------------------------------------------------


def test_before_an_edit_the_old_text_after_it_both_versions_as_history(
    alice: User, bob: User, dm: Conversation
) -> None:
    offer = chat.message_send(actor=alice, conversation_id=dm.pk, body="Rabatt 15 Prozent").message
    before_edit = tick()
    chat.message_edit(actor=alice, message_id=offer.pk, body="Rabatt 10 Prozent")
    after_edit = tick()
    archive(dm)

    then = by_seq(reconstruct(dm.pk, before_edit))[offer.seq]
    now = by_seq(reconstruct(dm.pk, after_edit))[offer.seq]

    assert bodies(then) == [("created", "Rabatt 15 Prozent")]
    assert not then.is_edited
    assert bodies(now) == [("created", "Rabatt 15 Prozent"), ("edited", "Rabatt 10 Prozent")]
    assert now.is_edited and now.current.body == "Rabatt 10 Prozent"


def test_the_page_before_an_edit_never_shows_the_new_text(
    alice: User, dm: Conversation, case: Case, browser: Client
) -> None:
    offer = chat.message_send(actor=alice, conversation_id=dm.pk, body="Rabatt 15 Prozent").message
    before_edit = tick()
    chat.message_edit(actor=alice, message_id=offer.pk, body="Rabatt 10 Prozent")
    archive(dm)

    then = browser.get(page_url(case, dm), {"at": before_edit.isoformat()}).content.decode()
    now = browser.get(page_url(case, dm)).content.decode()

    assert "Rabatt 15 Prozent" in then and "Rabatt 10 Prozent" not in then
    assert "Rabatt 15 Prozent" in now and "Rabatt 10 Prozent" in now
    assert f'href="#m{offer.pk}-v1"' in now and f'id="m{offer.pk}-v2"' in now  # links to its versions


def test_a_deleted_message_shows_as_deleted_with_its_content(
    alice: User, bob: User, dm: Conversation, case: Case, browser: Client
) -> None:
    secret = chat.message_send(actor=bob, conversation_id=dm.pk, body="Schwarzgeld am Freitag").message
    before_delete = tick()
    chat.message_delete(actor=bob, message_id=secret.pk)
    archive(dm)

    then = by_seq(reconstruct(dm.pk, before_delete))[secret.seq]
    now = by_seq(reconstruct(dm.pk, None))[secret.seq]
    page = browser.get(page_url(case, dm)).content.decode()

    assert not then.is_deleted
    assert now.is_deleted
    assert bodies(now) == [("created", "Schwarzgeld am Freitag"), ("deleted", "Schwarzgeld am Freitag")]
    assert "rc-msg--deleted" in page and "Deleted for readers. Its content when deleted:" in page
    assert "Schwarzgeld am Freitag" in page


def test_members_are_those_of_the_moment(alice: User, bob: User, charlie: User) -> None:
    group = chat.group_create(actor=alice, name="Einkauf", member_ids=[bob.pk])
    chat.message_send(actor=alice, conversation_id=group.pk, body="Angebot Nordhafen")
    before_charlie = tick()
    chat.members_add(actor=alice, conversation_id=group.pk, user_ids=[charlie.pk])
    with_charlie = tick()
    chat.conversation_leave(actor=bob, conversation_id=group.pk)
    archive(group)

    def members(at: datetime | None) -> set[str]:
        return {m.person.name for m in reconstruct(group.pk, at).members}

    assert members(before_charlie) == {"Alice Adler", "Bob Brandt"}
    assert members(with_charlie) == {"Alice Adler", "Bob Brandt", "Charlie Czerny"}
    assert members(None) == {"Alice Adler", "Charlie Czerny"}
    owners = [m.person.name for m in reconstruct(group.pk, None).members if m.role == "owner"]
    assert owners == ["Alice Adler"]


def test_the_page_lists_the_members_of_the_moment_not_those_who_joined_later(
    alice: User, bob: User, charlie: User, case: Case, browser: Client
) -> None:
    group = chat.group_create(actor=alice, name="Einkauf", member_ids=[bob.pk])
    before_charlie = tick()
    chat.members_add(actor=alice, conversation_id=group.pk, user_ids=[charlie.pk])
    archive(group)

    then = browser.get(page_url(case, group), {"at": before_charlie.isoformat()}).content.decode()
    now = browser.get(page_url(case, group)).content.decode()

    assert f'data-person="{bob.pk}"' in then and f'data-person="{charlie.pk}"' not in then
    assert f'data-person="{charlie.pk}"' in now
    assert "Alice Adler added Charlie Czerny" in now


def test_a_moment_before_the_conversation_shows_nothing_of_it(
    alice: User, bob: User, case: Case, browser: Client
) -> None:
    before = tick()
    group = chat.group_create(actor=alice, name="Einkauf", member_ids=[bob.pk])
    chat.message_send(actor=alice, conversation_id=group.pk, body="Angebot Nordhafen")
    archive(group)

    result = reconstruct(group.pk, before)
    page = browser.get(page_url(case, group), {"at": before.isoformat()}).content.decode()

    assert (result.messages, result.members, result.leading, result.total_messages) == ([], [], [], 0)
    assert "Nothing of this conversation was archived by this moment." in page
    assert "Angebot Nordhafen" not in page


def test_reactions_are_those_of_the_moment(alice: User, bob: User, dm: Conversation) -> None:
    message = chat.message_send(actor=alice, conversation_id=dm.pk, body="Vertrag unterschrieben").message
    chat.reaction_set(actor=bob, message_id=message.pk, emoji="👍")
    with_reaction = tick()
    chat.reaction_set(actor=bob, message_id=message.pk, emoji="👍", present=False)
    archive(dm)

    then = by_seq(reconstruct(dm.pk, with_reaction))[message.seq]
    now = by_seq(reconstruct(dm.pk, None))[message.seq]

    assert [(emoji, [p.name for p in people]) for emoji, people in then.reaction_list] == [
        ("👍", ["Bob Brandt"])
    ]
    assert now.reaction_list == []


def test_it_reads_only_the_records_not_the_live_chat(
    alice: User, bob: User, dm: Conversation, case: Case, browser: Client
) -> None:
    offer = chat.message_send(actor=alice, conversation_id=dm.pk, body="Preis 100 Euro").message
    archive(dm)
    # After archiving the live chat moves on (an edit not archived yet), then
    # the live messages and their journal go altogether.
    chat.message_edit(actor=alice, message_id=offer.pk, body="Preis 90 Euro")
    Message.objects.filter(pk=offer.pk).update(body="Preis 1 Euro")
    live_edited = reconstruct(dm.pk, None)
    delete_live_chat(dm)
    purged = reconstruct(dm.pk, None)
    page = browser.get(page_url(case, dm)).content.decode()

    for result in (live_edited, purged):
        assert bodies(by_seq(result)[offer.seq]) == [("created", "Preis 100 Euro")]
        assert {m.person.name for m in result.members} == {"Alice Adler", "Bob Brandt"}
    assert "Preis 100 Euro" in page and "Preis 90 Euro" not in page and "Preis 1 Euro" not in page


def test_a_record_purged_after_retention_is_a_gap_and_the_rest_still_reads(
    alice: User, bob: User, dm: Conversation, case: Case, browser: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "retain_until", lambda policy, made_on: date(2015, 12, 31))
    old = chat.message_send(actor=alice, conversation_id=dm.pk, body="Uralt").message
    archive(dm)
    monkeypatch.setattr(records, "retain_until", lambda policy, made_on: date.today() + timedelta(days=3650))
    chat.message_edit(actor=alice, message_id=old.pk, body="Uralt, korrigiert")
    chat.message_send(actor=bob, conversation_id=dm.pk, body="Noch da")
    archive(dm)
    assert lifecycle.purge_expired().purged == 1

    result = reconstruct(dm.pk, None)
    page = browser.get(page_url(case, dm)).content.decode()

    assert [(n.kind, n.first_record, n.last_record) for n in result.leading] == [("purged", 1, 1)]
    messages = by_seq(result)
    assert bodies(messages[old.seq]) == [("edited", "Uralt, korrigiert")]
    assert messages[old.seq].earlier_versions_purged
    assert "Uralt" not in [v.body for m in result.messages for v in m.versions]
    # Members from what record 2 captured, since record 1 is gone.
    assert {m.person.name for m in result.members} == {"Alice Adler", "Bob Brandt"}
    assert result.members_seeded_from == 2
    assert result.chain is not None and result.chain.ok and result.chain.purged == 1
    assert "Record 1 purged after retention" in page and "Chain verified:" in page


def test_records_written_after_the_moment_are_not_read(
    alice: User, dm: Conversation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconstruct_replay, "RECORD_MARGIN", timedelta(0))
    chat.message_send(actor=alice, conversation_id=dm.pk, body="eins")
    first = archive(dm)
    moment = tick()
    later = []
    for body in ("zwei", "drei", "vier"):
        chat.message_send(actor=alice, conversation_id=dm.pk, body=body)
        later += archive(dm)

    result = reconstruct(dm.pk, moment)

    # The records up to the moment and the first one after it (it may hold
    # the moment's last events), not the rest.
    assert [r.seq for r in result.records] == [first[-1].seq, later[0].seq]
    assert [m.current.body for m in result.messages] == ["eins"]


# --- The chain badge -------------------------------------------------------------------


def test_the_badge_says_verified_with_the_records_and_hashes(
    alice: User, dm: Conversation, case: Case, browser: Client
) -> None:
    first, last = two_records(alice, dm)

    page = browser.get(page_url(case, dm)).content.decode()

    assert 'data-chain="verified"' in page and "Chain broken" not in page
    assert "Chain verified:</strong> records 1\N{EN DASH}2," in page
    assert first.sha256 in page and last.sha256 in page


def test_the_records_table_says_its_days_are_the_company_s_not_the_viewer_s(
    alice: User, dm: Conversation, case: Case, browser: Client, settings: Any
) -> None:
    # Fourteen hours ahead of the auditor's UTC: the record's day is often not the
    # day of its times on the page, and the page says why.
    settings.KONTOR_TIME_ZONE = "Pacific/Kiritimati"
    chat.message_send(actor=alice, conversation_id=dm.pk, body="Guten Morgen")
    record = archive(dm)[0]

    page = browser.get(page_url(case, dm)).content.decode()

    day = record.period_start
    assert f'<td data-label="Company days" class="ws-nowrap">{day.day} {day:%b %Y}</td>' in page
    assert (
        "Company days: the calendar days in the company's time zone (Pacific/Kiritimati) "
        "whose events the record holds. Times on this page are in UTC."
    ) in page


def test_the_badge_says_broken_when_a_record_was_altered(
    alice: User, bob: User, dm: Conversation, case: Case, browser: Client
) -> None:
    chat.message_send(actor=alice, conversation_id=dm.pk, body="Lieferung 500 Stück")
    record = archive(dm)[0]
    tampered = record.content.canonical_json.replace("500 Stück", "50 Stück")
    without_guards(
        f"UPDATE compliance_recordcontent SET canonical_json = '{tampered}' WHERE record_id = {record.pk}"
    )

    page = browser.get(page_url(case, dm)).content.decode()

    assert 'data-chain="broken"' in page and 'data-chain="verified"' not in page
    assert "Chain broken:</strong>" in page and "does not match its hash (altered)" in page
    assert "comes from a record that no longer matches its hash" in page
    assert views()[-1].detail["chain"].startswith("broken:")


def test_a_record_altered_beyond_reading_is_shown_as_unreadable_not_an_error(
    alice: User, dm: Conversation, case: Case, browser: Client
) -> None:
    first, _ = two_records(alice, dm)
    without_guards(
        f"UPDATE compliance_recordcontent SET canonical_json = 'gone' WHERE record_id = {first.pk}"
    )

    response = browser.get(page_url(case, dm))

    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-chain="broken"' in page and "content missing or unreadable" in page
    assert "zwei" in page and ">eins<" not in page
    assert {m.person.name for m in reconstruct(dm.pk, None).members} == {"Alice Adler", "Bob Brandt"}


# --- Files ------------------------------------------------------------------------------


@pytest.fixture
def invoice(alice: User, dm: Conversation) -> StoredFile:
    stored = files.file_store(
        upload=io.BytesIO(b"%PDF-1.4 Rechnung 4711\n"), name="Rechnung 4711.pdf", uploader=alice
    )
    chat.message_send(actor=alice, conversation_id=dm.pk, body="Anbei die Rechnung", file_ids=[stored.pk])
    archive(dm)
    return stored


def file_url(case: Case, conversation: Conversation, sha256: str) -> str:
    return reverse("compliance:archived_file", args=[case.pk, conversation.pk, sha256])


def test_an_archived_file_downloads_with_its_exact_bytes(
    invoice: StoredFile, dm: Conversation, case: Case, browser: Client
) -> None:
    page = browser.get(page_url(case, dm)).content.decode()
    assert file_url(case, dm, invoice.sha256) in page and invoice.sha256 in page
    # The live file goes (a purge): the archive copy answers.
    StoredFile.objects.filter(pk=invoice.pk).update(storage_key="gone/elsewhere")

    response = browser.get(file_url(case, dm, invoice.sha256))

    assert response.status_code == 200
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert body == b"%PDF-1.4 Rechnung 4711\n"
    assert hashlib.sha256(body).hexdigest() == invoice.sha256
    assert response["Content-Disposition"].startswith("attachment;")
    assert "Rechnung 4711.pdf" in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    downloads = AuditEvent.objects.filter(kind=AuditEvent.Kind.FILE_DOWNLOADED)
    assert downloads.count() == 1
    event = downloads.get()
    assert (event.case_id, event.ip, event.user_agent) == (case.pk, ADDRESS, BROWSER)
    assert event.detail["sha256"] == invoice.sha256 and event.detail["served"] is True


def test_a_file_whose_archive_copy_was_altered_is_refused(
    invoice: StoredFile, dm: Conversation, case: Case, browser: Client, archive_storage: Path
) -> None:
    copy = archive_storage / archive_store.file_name(invoice.sha256)
    os.chmod(copy, 0o640)
    copy.write_bytes(b"%PDF-1.4 Rechnung 4711 (changed)\n")

    response = browser.get(file_url(case, dm, invoice.sha256))

    assert response.status_code == 409
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "does not match the SHA-256 its record holds" in page and "changed" not in page
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.FILE_DOWNLOADED)
    assert event.detail["served"] is False and "altered" in event.detail["refused"]


def test_the_page_says_a_file_is_refused_when_its_archive_copy_was_altered(
    invoice: StoredFile, dm: Conversation, case: Case, browser: Client, archive_storage: Path
) -> None:
    """The page itself says so, before anyone asks for the file; the company
    file storage's intact bytes do not stand in for the altered copy."""
    alter_archive_copy(archive_storage, invoice.sha256, b"%PDF-1.4 Rechnung 4711 (changed)\n")
    assert default_storage.open(invoice.storage_key).read() == b"%PDF-1.4 Rechnung 4711\n"

    result = reconstruct(dm.pk, None)
    page = browser.get(page_url(case, dm)).content.decode()
    response = browser.get(file_url(case, dm, invoice.sha256))

    (refused,) = result.refused_files
    assert (refused.sha256, refused.refused, refused.problem) == (invoice.sha256, True, chain.ALTERED_COPY)
    assert 'data-file-state="refused"' in page and 'data-file-state="checked"' not in page
    assert "<strong>Refused:</strong> The archive copy of this file does not match the SHA-256" in page
    assert response.status_code == 409 and b"changed" not in response.content


def test_the_page_says_an_intact_file_was_checked_and_a_gone_one_is_gone(
    invoice: StoredFile, dm: Conversation, case: Case, browser: Client, archive_storage: Path
) -> None:
    assert 'data-file-state="checked"' in browser.get(page_url(case, dm)).content.decode()
    (archive_storage / archive_store.file_name(invoice.sha256)).unlink()
    StoredFile.objects.filter(pk=invoice.pk).update(storage_key="gone/elsewhere")
    default_storage.delete(files.blob_key(invoice.sha256))

    page = browser.get(page_url(case, dm)).content.decode()

    assert 'data-file-state="gone"' in page and "The bytes of this file are no longer stored" in page
    assert browser.get(file_url(case, dm, invoice.sha256)).status_code == 410


def test_without_an_archive_copy_the_stored_file_is_checked_too(
    invoice: StoredFile,
    dm: Conversation,
    case: Case,
    browser: Client,
    archive_storage: Path,
    file_storage: Path,
) -> None:
    copy = archive_storage / archive_store.file_name(invoice.sha256)
    copy.unlink()
    served = browser.get(file_url(case, dm, invoice.sha256))
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == b"%PDF-1.4 Rechnung 4711\n"  # type: ignore[attr-defined]

    (file_storage / invoice.storage_key).write_bytes(b"%PDF-1.4 Rechnung gefaelscht\n")
    refused = browser.get(file_url(case, dm, invoice.sha256))

    assert refused.status_code == 409 and b"gefaelscht" not in refused.content
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.FILE_DOWNLOADED).count() == 2


def test_a_file_of_another_conversation_is_not_served(
    invoice: StoredFile, alice: User, charlie: User, case: Case, browser: Client
) -> None:
    other = chat.direct_open(actor=alice, other_user_id=charlie.pk)
    chat.message_send(actor=alice, conversation_id=other.pk, body=f"Hash {invoice.sha256}")
    archive(other)

    assert browser.get(file_url(case, other, invoice.sha256)).status_code == 404
    assert browser.get(file_url(case, other, "x" * 64)).status_code == 404
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.FILE_DOWNLOADED).exists()


# --- The audit trail and who gets in -----------------------------------------------------


def test_each_opening_is_exactly_one_audit_event(
    alice: User, dm: Conversation, case: Case, browser: Client
) -> None:
    chat.message_send(actor=alice, conversation_id=dm.pk, body="eins")
    moment = tick()
    records = archive(dm)

    browser.get(page_url(case, dm), {"at": moment.isoformat()})
    browser.get(page_url(case, dm))
    browser.get(reverse("compliance:conversations", args=[case.pk]), {"participant": "alice"})

    logged = views()
    assert len(logged) == 3
    first = logged[0]
    assert (first.case_id, first.ip, first.user_agent) == (case.pk, ADDRESS, BROWSER)
    assert first.detail["conversation"] == dm.pk
    assert datetime.fromisoformat(first.detail["at"]) == moment
    assert first.detail["records"] == "1"
    assert first.detail["record_hashes"] == [records[0].sha256]  # one record, named once
    assert logged[1].detail["at"] == "latest"
    assert logged[2].detail["participant"] == "alice" and logged[2].detail["results"] == 1


def test_an_opening_over_several_records_logs_the_first_and_last_hash(
    alice: User, dm: Conversation, case: Case, browser: Client
) -> None:
    first, last = two_records(alice, dm)

    browser.get(page_url(case, dm))

    (logged,) = views()
    assert logged.detail["records"] == f"{first.seq} to {last.seq}"
    assert logged.detail["record_hashes"] == [first.sha256, last.sha256]


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("2026-03-02T14:30", datetime(2026, 3, 2, 13, 30, tzinfo=UTC)),  # the picker: the viewer's zone
        ("2026-03-02 14:30:15", datetime(2026, 3, 2, 13, 30, 15, tzinfo=UTC)),
        ("2026-03-02T14:30:00+02:00", datetime(2026, 3, 2, 12, 30, tzinfo=UTC)),
        ("2026-03-02T14:30:00 02:00", datetime(2026, 3, 2, 12, 30, tzinfo=UTC)),  # "+" lost in a URL
        ("2026-03-02T14:30:00.250000Z", datetime(2026, 3, 2, 14, 30, 0, 250000, tzinfo=UTC)),
        ("2026-03-02", datetime(2026, 3, 2, 22, 59, 59, 999999, tzinfo=UTC)),  # the end of that day
    ],
)
def test_a_moment_is_read_as_the_auditor_meant_it(typed: str, meant: datetime) -> None:
    with timezone.override(ZoneInfo("Europe/Berlin")):
        assert parse_moment(typed) == meant


def test_a_moment_that_is_no_date_is_refused_and_not_logged(
    alice: User, dm: Conversation, case: Case, browser: Client
) -> None:
    archive(dm)

    response = browser.get(page_url(case, dm), {"at": "yesterday"})

    assert response.status_code == 400 and "That is not a date and time" in response.content.decode()
    assert views() == []


def test_a_conversation_not_in_the_archive_is_404(
    alice: User, dm: Conversation, case: Case, browser: Client
) -> None:
    assert browser.get(page_url(case, dm)).status_code == 404
    assert views() == []


@pytest.mark.parametrize("who", ["alice", "hr", "auditor without a second factor"])
def test_nobody_but_an_auditor_gets_in(
    who: str, alice: User, hr_user: User, invoice: StoredFile, dm: Conversation, case: Case
) -> None:
    person = {
        "alice": alice,
        "hr": hr_user,
        "auditor without a second factor": make_user(
            email="nina@kontor.example", display_name="Nina Neu", roles=[roles.AUDITORS]
        ),
    }[who]
    client = Client()
    client.force_login(person)

    for url in (
        reverse("compliance:conversations", args=[case.pk]),
        page_url(case, dm),
        file_url(case, dm, invoice.sha256),
    ):
        assert client.get(url).status_code == 404, url
    assert not AuditEvent.objects.filter(kind__in=[AuditEvent.Kind.VIEWED, AuditEvent.Kind.FILE_DOWNLOADED])


def test_a_closed_case_opens_no_conversation(
    alice: User, dm: Conversation, case: Case, browser: Client, auditor_mfa: User
) -> None:
    chat.message_send(actor=alice, conversation_id=dm.pk, body="eins")
    archive(dm)
    cases.case_close(actor=auditor_mfa, case_id=case.pk, reason="Done")

    response = browser.get(page_url(case, dm))

    assert response.status_code == 403 and "closed" in response.content.decode()
    assert views() == []


class _Page(HTMLParser):
    """What a Content-Security-Policy of 'self' refuses: inline scripts,
    style attributes, and anything loaded from another host."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[str] = []
        self._script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if "style" in values:
            self.refused.append(f"style attribute on <{tag}>")
        for name in ("src", "href", "action"):
            value = (values.get(name) or "").strip()
            if value.startswith(("http:", "https:", "//")) and "//testserver" not in value:
                self.refused.append(f"{name}={value}")
        self._script = tag == "script" and not values.get("src")

    def handle_data(self, data: str) -> None:
        if self._script and data.strip():
            self.refused.append("inline script")

    def handle_endtag(self, tag: str) -> None:
        self._script = False


def test_the_pages_load_nothing_from_elsewhere_and_run_no_inline_code(
    invoice: StoredFile, alice: User, dm: Conversation, case: Case, browser: Client, archive_storage: Path
) -> None:
    chat.message_edit(actor=alice, message_id=Message.objects.get(conversation=dm).pk, body="Korrigiert")
    archive(dm)
    copy = archive_storage / archive_store.file_name(invoice.sha256)
    os.chmod(copy, 0o640)
    copy.write_bytes(b"altered")

    for url, status in (
        (reverse("compliance:conversations", args=[case.pk]), 200),
        (page_url(case, dm), 200),
        (file_url(case, dm, invoice.sha256), 409),
    ):
        response = browser.get(url)
        assert response.status_code == status, url
        page = _Page()
        page.feed(response.content.decode())
        assert page.refused == [], url


def test_a_case_awaiting_a_second_auditor_opens_no_conversation_nor_file(
    invoice: StoredFile, dm: Conversation, auditor_mfa: User, browser: Client, settings: Any
) -> None:
    settings.KONTOR_AUDIT_FOUR_EYES = True
    waiting = cases.case_open(actor=auditor_mfa, name="Second look", legal_basis="AO §147")

    for url in (
        reverse("compliance:conversations", args=[waiting.pk]),
        page_url(waiting, dm),
        file_url(waiting, dm, invoice.sha256),
    ):
        response = browser.get(url)
        assert response.status_code == 403 and b"approv" in response.content, url
    assert not AuditEvent.objects.filter(kind__in=[AuditEvent.Kind.VIEWED, AuditEvent.Kind.FILE_DOWNLOADED])


# --- Long conversations ---------------------------------------------------------------


def send_many(author: User, conversation: Conversation, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        chat.message_send(actor=author, conversation_id=conversation.pk, body=f"Nachricht {n:04d}")


@pytest.fixture
def long_chat(alice: User, dm: Conversation) -> Iterator[Conversation]:
    send_many(alice, dm, 230)
    archive(dm)
    yield dm


def test_the_page_shows_one_page_of_messages_and_pages_by_seq(
    long_chat: Conversation, case: Case, browser: Client
) -> None:
    newest = reconstruct(long_chat.pk, None, limit=100)
    assert [m.seq for m in newest.messages] == list(range(131, 231))
    assert newest.total_messages == 230 and newest.earlier == 131 and newest.later is None

    earlier = reconstruct(long_chat.pk, None, before=newest.earlier, limit=100)
    assert [m.seq for m in earlier.messages] == list(range(31, 131))
    beginning = reconstruct(long_chat.pk, None, after=0, limit=100)
    assert [m.seq for m in beginning.messages] == list(range(1, 101)) and beginning.later == 100
    following = reconstruct(long_chat.pk, None, after=beginning.later, limit=100)
    assert [m.seq for m in following.messages] == list(range(101, 201))

    page = browser.get(page_url(case, long_chat)).content.decode()
    assert page.count('data-seq="') == 100
    assert "Nachricht 0229" in page and "Nachricht 0129" not in page
    assert "before=131" in page
    # A link to a message (a search hit) opens the page around it.
    around = browser.get(page_url(case, long_chat, around=50)).content.decode()
    assert 'data-seq="45"' in around and 'data-seq="144"' in around  # five before it
    assert 'data-seq="44"' not in around and 'data-seq="145"' not in around


def test_the_page_costs_the_same_queries_however_long_the_conversation(
    alice: User, bob: User, dm: Conversation, case: Case, browser: Client
) -> None:
    send_many(alice, dm, 5)
    archive(dm)
    browser.get(page_url(case, dm))  # warm the session and caches
    with CaptureQueriesContext(connection) as short:
        assert browser.get(page_url(case, dm)).status_code == 200

    for batch in range(3):  # more messages and more records
        send_many(bob, dm, 100, start=5 + 100 * batch)
        archive(dm)
    with CaptureQueriesContext(connection) as long:
        response = browser.get(page_url(case, dm))

    assert response.status_code == 200
    assert response.content.decode().count('data-seq="') == 100
    assert len(long) == len(short), [q["sql"] for q in long.captured_queries]


def test_the_page_is_drawn_without_a_query(
    invoice: StoredFile,
    alice: User,
    bob: User,
    charlie: User,
    case: Case,
    browser: Client,
    monkeypatch: pytest.MonkeyPatch,
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    """Every query of the reconstruction page happens before its template is
    drawn: the view's context (the reconstruction, the chain's check, the
    files' checks) and what the context processors read (the session user's
    roles) are built first; drawing the page then asks the database nothing."""
    group = chat.group_create(actor=alice, name="Einkauf", member_ids=[bob.pk])
    offer = chat.message_send(actor=alice, conversation_id=group.pk, body="Angebot", file_ids=[invoice.pk])
    chat.message_edit(actor=alice, message_id=offer.message.pk, body="Angebot, korrigiert")
    chat.reaction_set(actor=bob, message_id=offer.message.pk, emoji="👍")
    chat.members_add(actor=alice, conversation_id=group.pk, user_ids=[charlie.pk])
    chat.message_send(actor=charlie, conversation_id=group.pk, body="Danke", reply_to_id=offer.message.pk)
    archive(group)
    real = loader.render_to_string
    drawn: list[str] = []

    def render(template_name: Any, context: Any = None, request: Any = None, using: Any = None) -> str:
        if template_name != "compliance/conversation.html":
            return str(real(template_name, context, request, using))
        template = loader.get_template(template_name, using=using)
        values: dict[str, Any] = {}
        for processor in template.template.engine.template_context_processors:  # type: ignore[attr-defined]
            values.update(processor(request))
        values.update(context or {})
        with django_assert_num_queries(0):
            page = str(template.render(values))
        drawn.append(page)
        return page

    monkeypatch.setattr(loader, "render_to_string", render)
    response = browser.get(page_url(case, group))

    assert response.status_code == 200 and len(drawn) == 1
    assert "Angebot, korrigiert" in drawn[0] and "Charlie Czerny" in drawn[0] and invoice.sha256 in drawn[0]
