"""The archive's search index: one row per message version, written with the
record, from the record alone; rebuilt idempotently; gone with a purge."""

import io
import json
from datetime import date
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.models import Department, User
from archive.models import StoredFile
from compliance import index, lifecycle, records, services
from compliance.models import ArchivedMessage, RecordContent
from messenger import services as chat
from messenger.models import Conversation
from tests.archive.conftest import PDF
from tests.compliance.workspace.search_helpers import archive, text_file, upload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("file_storage")]


def versions() -> list[tuple[int, int, str, str]]:
    return list(
        ArchivedMessage.objects.order_by("message_id", "version").values_list(
            "message_id", "version", "kind", "body"
        )
    )


def reindex() -> str:
    out = io.StringIO()
    call_command("reindex_archive", stdout=out)
    return out.getvalue()


def test_a_snapshot_indexes_every_version_of_every_message_and_nothing_else(
    alice: User, bob: User, dm: Conversation
) -> None:
    first = chat.message_send(actor=alice, conversation_id=dm.pk, body="Preis 1.200 EUR").message
    chat.message_edit(actor=alice, message_id=first.pk, body="Preis 1.100 EUR")
    chat.reaction_set(actor=bob, message_id=first.pk, emoji="👍")
    second = chat.message_send(actor=bob, conversation_id=dm.pk, body="Einverstanden").message
    chat.message_delete(actor=bob, message_id=second.pk)

    record = services.snapshot_conversation(conversation_id=dm.pk).record

    assert record is not None
    assert versions() == [
        (first.pk, 1, "created", "Preis 1.200 EUR"),
        (first.pk, 2, "edited", "Preis 1.100 EUR"),
        (second.pk, 1, "created", "Einverstanden"),
        (second.pk, 2, "deleted", "Einverstanden"),
    ]
    row = ArchivedMessage.objects.get(message_id=first.pk, version=2)
    payload = json.loads(record.content.canonical_json)
    edit = next(e for e in payload["events"] if e["type"] == "message_edited")
    assert (row.record_id, row.conversation_id, row.event_id) == (record.pk, dm.pk, edit["id"])
    assert (row.author_id, row.author_name, row.message_seq) == (alice.pk, "Alice Adler", first.seq)
    assert row.at.isoformat() == edit["revision"]["at"]
    assert row.conversation_title == "Alice Adler & Bob Brandt"
    assert not row.has_files and row.files == [] and row.file_types == ""


def test_names_and_departments_are_those_at_capture(alice: User, bob: User, dm: Conversation) -> None:
    alice.department = Department.objects.create(name="Einkauf")
    alice.save()
    chat.message_send(actor=alice, conversation_id=dm.pk, body="Bestellung raus")
    archive(dm)
    alice.display_name, alice.department = "Alice Neumann", Department.objects.create(name="Vertrieb")
    alice.save()
    channel = chat.channel_create(actor=alice, name="einkauf", topic="", is_private=False)
    chat.message_send(actor=alice, conversation_id=channel.pk, body="Hallo Kanal")
    archive(channel)

    rows = ArchivedMessage.objects.order_by("at").values_list(
        "author_name", "author_department", "conversation_title"
    )
    assert list(rows) == [
        ("Alice Adler", "Einkauf", "Alice Adler & Bob Brandt"),
        ("Alice Neumann", "Vertrieb", "#einkauf"),
    ]


def test_attached_files_bring_their_text_and_types_as_they_were_at_capture(
    alice: User, dm: Conversation
) -> None:
    notes = text_file(alice, "Protokoll.txt", "Vereinbart: Nachlass von zwölf Prozent")
    offer = upload(alice, PDF, "Angebot.pdf")
    sent = chat.message_send(actor=alice, conversation_id=dm.pk, body="Anbei", file_ids=[notes.pk, offer.pk])

    archive(dm)

    row = ArchivedMessage.objects.get(message_id=sent.message.pk)
    assert row.has_files
    assert row.file_types == "text/plain application/pdf"
    assert row.file_text == "Vereinbart: Nachlass von zwölf Prozent"
    assert [f["name"] for f in row.files] == ["Protokoll.txt", "Angebot.pdf"]


def test_text_extracted_after_capture_is_added_by_reindex_and_a_second_run_changes_nothing(
    alice: User, dm: Conversation
) -> None:
    stored = upload(alice, b"Lieferung nach Rostock am Montag", "lieferung.txt")
    assert stored.text_state == StoredFile.State.PENDING  # the extraction task has not run yet
    sent = chat.message_send(actor=alice, conversation_id=dm.pk, body="Siehe Datei", file_ids=[stored.pk])
    archive(dm)
    assert ArchivedMessage.objects.get(message_id=sent.message.pk).file_text == ""

    StoredFile.objects.filter(pk=stored.pk).update(text="Lieferung nach Rostock am Montag")
    first = reindex()
    second = reindex()

    assert (
        ArchivedMessage.objects.get(message_id=sent.message.pk).file_text
        == "Lieferung nach Rostock am Montag"
    )
    assert "1 record(s) reindexed, 0 unchanged" in first
    assert "0 record(s) reindexed, 1 unchanged" in second


def test_reindex_rebuilds_a_lost_index_exactly_from_the_records(
    alice: User, bob: User, dm: Conversation
) -> None:
    notes = text_file(alice, "Notiz.txt", "Skonto drei Prozent")
    for n in range(3):
        sent = chat.message_send(
            actor=alice, conversation_id=dm.pk, body=f"Nachricht {n}", file_ids=[notes.pk] if n == 0 else []
        )
        archive(dm)
    chat.message_edit(actor=alice, message_id=sent.message.pk, body="Nachricht zwei, korrigiert")
    archive(dm)
    fields = [f for f in index.COMPARED]
    before = list(ArchivedMessage.objects.order_by("message_id", "version").values_list(*fields))

    ArchivedMessage.objects.all().delete()
    out = reindex()

    assert list(ArchivedMessage.objects.order_by("message_id", "version").values_list(*fields)) == before
    assert "4 records, 4 message versions; 4 record(s) reindexed" in out


def test_the_purge_takes_a_records_index_rows_with_its_content(
    alice: User, dm: Conversation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "retain_until", lambda policy, made_on: date(2015, 12, 31))
    chat.message_send(actor=alice, conversation_id=dm.pk, body="Alte Rechnung")
    archive(dm)
    assert ArchivedMessage.objects.count() == 1

    assert lifecycle.purge_expired().purged == 1

    assert not RecordContent.objects.exists()
    assert not ArchivedMessage.objects.exists()
    assert "0 message versions" in reindex()  # and a rebuild does not bring them back
    assert not ArchivedMessage.objects.exists()


def test_huge_attachment_texts_cannot_stop_a_snapshot(alice: User, dm: Conversation) -> None:
    # Three files of distinct short words: each text fits PostgreSQL's 1 MiB
    # limit of a text-search vector, all three together would not, and the
    # index's insert (and the snapshot with it) would fail.
    texts = [" ".join(f"f{n}w{i:06x}" for i in range(60_000)) for n in range(3)]
    stored = []
    for n, text in enumerate(texts):
        stored.append(upload(alice, f"placeholder {n}".encode(), f"gross-{n}.txt"))
        StoredFile.objects.filter(pk=stored[-1].pk).update(text=text)
    sent = chat.message_send(
        actor=alice, conversation_id=dm.pk, body="Riesig", file_ids=[f.pk for f in stored]
    )

    assert archive(dm) == 1

    row = ArchivedMessage.objects.get(message_id=sent.message.pk)
    assert row.file_text == "\n".join(texts)[: index.FILE_TEXT_MAX]


def test_the_full_text_document_is_stored_and_gin_indexed_on_postgresql(
    alice: User, dm: Conversation
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite searches without a full-text index")
    chat.message_send(actor=alice, conversation_id=dm.pk, body="Zollbescheid Hamburg")
    archive(dm)
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'compliance_archived_fts'")
        definition: Any = cursor.fetchone()
        cursor.execute("SELECT search_document::text FROM compliance_archivedmessage")
        document: Any = cursor.fetchone()
    assert definition is not None and "USING gin (search_document)" in definition[0]
    assert document[0] == "'hamburg':2 'zollbescheid':1"
