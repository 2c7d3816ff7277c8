"""Search finds a message by words inside its attachments, for members only."""

import io

import pytest
from django.db import connection
from django.test import Client
from pytest_django import DjangoAssertNumQueries

from accounts.models import User
from archive import services as archive_services
from archive import tasks
from archive.models import StoredFile
from messenger import selectors, services
from messenger.models import Conversation, Message
from tests.archive.documents import text_pdf, word_document

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("file_storage")]


def send_with_file(
    author: User, conversation: Conversation, data: bytes, name: str, body: str = "Anbei das Dokument"
) -> Message:
    stored = archive_services.file_store(upload=io.BytesIO(data), name=name, uploader=author)
    tasks.extract_text(stored.pk)
    return services.message_send(
        actor=author, conversation_id=conversation.pk, body=body, file_ids=[stored.pk]
    ).message


def test_search_finds_a_message_by_a_word_inside_its_pdf(alice: User, bob: User, dm: Conversation) -> None:
    sent = send_with_file(alice, dm, text_pdf("Nordhafen Angebot"), "angebot.pdf")
    services.message_send(actor=alice, conversation_id=dm.pk, body="Something else entirely")

    hits = selectors.message_search(user=bob, q="nordhafen")

    assert [hit.message for hit in hits] == [sent]
    assert "angebot.pdf" in hits[0].snippet


def test_search_finds_words_from_a_word_document(alice: User, bob: User, dm: Conversation) -> None:
    sent = send_with_file(alice, dm, word_document(["Hafenlogistik"], ["Rostock"]), "plan.docx")

    assert [hit.message for hit in selectors.message_search(user=bob, q="rostock")] == [sent]


def test_body_matches_still_come_first_by_recency(alice: User, bob: User, dm: Conversation) -> None:
    in_file = send_with_file(alice, dm, text_pdf("Nordhafen Angebot"), "angebot.pdf")
    in_body = services.message_send(actor=bob, conversation_id=dm.pk, body="Nordhafen morgen?").message

    hits = selectors.message_search(user=alice, q="Nordhafen")

    assert [hit.message for hit in hits] == [in_body, in_file]
    assert "<mark>Nordhafen</mark>" in hits[0].snippet


def test_an_outsider_does_not_find_words_in_others_files(
    alice: User, charlie: User, dm: Conversation
) -> None:
    send_with_file(alice, dm, text_pdf("Nordhafen Angebot"), "angebot.pdf")

    assert selectors.message_search(user=charlie, q="Nordhafen") == []


def test_a_deleted_messages_attachment_text_is_not_found(alice: User, bob: User, dm: Conversation) -> None:
    sent = send_with_file(alice, dm, text_pdf("Nordhafen Angebot"), "angebot.pdf")
    assert selectors.message_search(user=bob, q="Nordhafen")

    services.message_delete(actor=alice, message_id=sent.pk)

    assert selectors.message_search(user=bob, q="Nordhafen") == []
    assert StoredFile.objects.filter(text__contains="Nordhafen").exists()  # the bytes and text stay


def test_text_not_yet_extracted_is_not_found(alice: User, bob: User, dm: Conversation) -> None:
    stored = archive_services.file_store(
        upload=io.BytesIO(text_pdf("Nordhafen Angebot")), name="angebot.pdf", uploader=alice
    )
    services.message_send(actor=alice, conversation_id=dm.pk, body="Anbei", file_ids=[stored.pk])
    assert selectors.message_search(user=bob, q="Nordhafen") == []

    tasks.extract_text(stored.pk)

    assert len(selectors.message_search(user=bob, q="Nordhafen")) == 1


@pytest.mark.parametrize("count", [1, 4])
def test_searching_files_takes_one_query_however_many_hits(
    alice: User, bob: User, dm: Conversation, count: int, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    for number in range(count):
        send_with_file(alice, dm, text_pdf(f"Nordhafen Angebot {number}"), f"angebot-{number}.pdf")

    with django_assert_num_queries(1):
        hits = selectors.message_search(user=bob, q="Nordhafen")
        snippets = [hit.snippet for hit in hits]

    assert len(snippets) == count


def test_the_search_page_shows_a_hit_found_in_a_file(alice: User, bob: User, dm: Conversation) -> None:
    send_with_file(alice, dm, text_pdf("Nordhafen Angebot"), "angebot.pdf", body="")
    client = Client()
    client.force_login(bob)

    response = client.get("/search/", {"q": "Nordhafen"})

    assert response.status_code == 200
    assert "in angebot.pdf" in response.content.decode()


def test_file_text_search_can_use_the_gin_index() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the GIN index is PostgreSQL's")
    from django.contrib.postgres.search import SearchQuery, SearchVector

    query = SearchQuery("Nordhafen", config="simple", search_type="websearch")
    files = StoredFile.objects.annotate(vector=SearchVector("text", config="simple")).filter(vector=query)
    sql, params = files.values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "archive_storedfile_text_fts" in plan
