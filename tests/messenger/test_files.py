"""Sharing files in conversations: upload, send, download (members only), ranges."""

import io
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import User
from archive import services as archive_services
from archive.models import StoredFile
from messenger import services
from messenger.errors import ClientIdConflict, NotFound
from messenger.models import Conversation, Message, MessageRevision
from tests.archive.conftest import EXECUTABLE, PDF, png_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("file_storage")]


def upload(user: User, data: bytes = PDF, name: str = "offer.pdf") -> StoredFile:
    return archive_services.file_store(upload=io.BytesIO(data), name=name, uploader=user)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_upload_answers_with_the_file_and_nothing_is_shared_yet(alice: User) -> None:
    response = logged_in(alice).post(
        "/files/upload/", {"file": SimpleUploadedFile("Angebot.pdf", PDF, content_type="application/pdf")}
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["type"], body["size"]) == ("Angebot.pdf", "application/pdf", len(PDF))
    assert StoredFile.objects.get().uploaded_by == alice


def test_a_refused_upload_says_why_and_stores_nothing(alice: User) -> None:
    response = logged_in(alice).post(
        "/files/upload/", {"file": SimpleUploadedFile("invoice.pdf", EXECUTABLE)}
    )

    assert response.status_code == 400
    assert response.json()["error"] == "type_not_allowed"
    assert not StoredFile.objects.exists()


def test_an_upload_over_the_limit_is_stopped(alice: User, settings: Any) -> None:
    settings.KONTOR_UPLOAD_MAX_BYTES = 100
    response = logged_in(alice).post("/files/upload/", {"file": SimpleUploadedFile("big.txt", b"x" * 5000)})

    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert not StoredFile.objects.exists()


def test_anonymous_cannot_upload_or_download(alice: User, bob: User, dm: Conversation) -> None:
    stored = upload(alice)
    services.message_send(actor=alice, conversation_id=dm.pk, body="", file_ids=[stored.pk])

    assert Client().post("/files/upload/", {"file": SimpleUploadedFile("a.txt", b"hi")}).status_code == 401
    response = Client().get(f"/files/{stored.pk}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_message_carries_files_and_the_journal_keeps_their_hashes(alice: User, dm: Conversation) -> None:
    pdf, picture = upload(alice), upload(alice, png_bytes(), "photo.png")

    sent = services.message_send(
        actor=alice, conversation_id=dm.pk, body="Both attached", file_ids=[pdf.pk, picture.pk]
    )

    assert [a.file for a in sent.message.attachments.all()] == [pdf, picture]
    revision = MessageRevision.objects.get(message=sent.message)
    assert [(f["name"], f["sha256"]) for f in revision.files or []] == [
        ("offer.pdf", pdf.sha256),
        ("photo.png", picture.sha256),
    ]


def test_someone_elses_upload_cannot_be_attached(alice: User, bob: User, dm: Conversation) -> None:
    theirs = upload(bob)

    with pytest.raises(NotFound):
        services.message_send(actor=alice, conversation_id=dm.pk, body="mine now", file_ids=[theirs.pk])
    assert not Message.objects.exists()


def test_sending_with_files_is_idempotent(alice: User, dm: Conversation) -> None:
    stored = upload(alice)
    client_id = str(uuid.uuid4())

    first = services.message_send(
        actor=alice, conversation_id=dm.pk, body="", file_ids=[stored.pk], client_id=client_id
    )
    again = services.message_send(
        actor=alice, conversation_id=dm.pk, body="", file_ids=[stored.pk], client_id=client_id
    )

    assert again.message.pk == first.message.pk and not again.created
    with pytest.raises(ClientIdConflict):
        services.message_send(
            actor=alice, conversation_id=dm.pk, body="no file", file_ids=[], client_id=client_id
        )


def test_members_download_the_exact_bytes_as_an_attachment(alice: User, bob: User, dm: Conversation) -> None:
    stored = upload(alice, name="Angebot Müller.pdf")
    services.message_send(actor=alice, conversation_id=dm.pk, body="", file_ids=[stored.pk])

    response = logged_in(bob).get(f"/files/{stored.pk}/")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF  # type: ignore[attr-defined]
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "filename*=utf-8''Angebot%20M%C3%BCller.pdf" in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]


def test_pictures_may_be_shown_inline_but_pdfs_never(alice: User, bob: User, dm: Conversation) -> None:
    picture, pdf = upload(alice, png_bytes(), "photo.png"), upload(alice)
    services.message_send(actor=alice, conversation_id=dm.pk, body="", file_ids=[picture.pk, pdf.pk])
    client = logged_in(bob)

    assert client.get(f"/files/{picture.pk}/?inline=1")["Content-Disposition"].startswith("inline")
    assert client.get(f"/files/{pdf.pk}/?inline=1")["Content-Disposition"].startswith("attachment")


def test_a_range_request_gets_part_of_the_file(alice: User, bob: User, dm: Conversation) -> None:
    stored = upload(alice)
    services.message_send(actor=alice, conversation_id=dm.pk, body="", file_ids=[stored.pk])
    client = logged_in(bob)

    part = client.get(f"/files/{stored.pk}/", headers={"Range": "bytes=5-14"})
    tail = client.get(f"/files/{stored.pk}/", headers={"Range": "bytes=-6"})
    beyond = client.get(f"/files/{stored.pk}/", headers={"Range": f"bytes={len(PDF) + 10}-"})

    assert part.status_code == 206
    assert b"".join(part.streaming_content) == PDF[5:15]  # type: ignore[attr-defined]
    assert part["Content-Range"] == f"bytes 5-14/{len(PDF)}"
    assert b"".join(tail.streaming_content) == PDF[-6:]  # type: ignore[attr-defined]
    assert beyond.status_code == 416


def test_an_outsider_gets_404_for_a_shared_file(alice: User, charlie: User, dm: Conversation) -> None:
    stored = upload(alice)
    services.message_send(actor=alice, conversation_id=dm.pk, body="", file_ids=[stored.pk])

    assert logged_in(charlie).get(f"/files/{stored.pk}/").status_code == 404
    assert logged_in(charlie).get(f"/c/{dm.pk}/files/").status_code == 404


def test_an_unsent_upload_is_only_the_uploaders(alice: User, bob: User) -> None:
    stored = upload(alice)

    assert logged_in(alice).get(f"/files/{stored.pk}/").status_code == 200
    assert logged_in(bob).get(f"/files/{stored.pk}/").status_code == 404


def test_files_of_a_deleted_message_disappear_for_readers_but_stay_stored(
    alice: User, bob: User, dm: Conversation, file_storage: Path
) -> None:
    stored = upload(alice)
    sent = services.message_send(actor=alice, conversation_id=dm.pk, body="oops", file_ids=[stored.pk])
    services.message_delete(actor=alice, message_id=sent.message.pk)

    assert logged_in(bob).get(f"/files/{stored.pk}/").status_code == 404
    assert (file_storage / stored.storage_key).read_bytes() == PDF
    deleted = MessageRevision.objects.get(message=sent.message, kind="deleted")
    assert deleted.files is not None
    assert deleted.files[0]["sha256"] == stored.sha256


def test_the_files_page_lists_what_was_shared_newest_first(alice: User, bob: User, dm: Conversation) -> None:
    first, second = upload(alice, name="first.pdf"), upload(alice, png_bytes(), "second.png")
    services.message_send(actor=alice, conversation_id=dm.pk, body="", file_ids=[first.pk])
    services.message_send(actor=alice, conversation_id=dm.pk, body="", file_ids=[second.pk])

    page = logged_in(bob).get(f"/c/{dm.pk}/files/").content.decode()

    assert page.index("second.png") < page.index("first.pdf")


def test_without_javascript_files_go_with_the_form_and_a_repeat_sends_once(
    alice: User, bob: User, dm: Conversation
) -> None:
    client = logged_in(alice)
    client_id = str(uuid.uuid4())

    def post() -> Any:
        return client.post(
            f"/c/{dm.pk}/send/",
            {"body": "", "client_id": client_id, "files": [SimpleUploadedFile("offer.pdf", PDF)]},
        )

    assert post().status_code == 302
    assert post().status_code == 302
    message = Message.objects.get()
    assert [a.file.name for a in message.attachments.all()] == ["offer.pdf"]
    assert StoredFile.objects.count() == 1
    assert "offer.pdf" in logged_in(bob).get(f"/c/{dm.pk}/").content.decode()


def test_a_refused_file_in_the_form_keeps_the_draft_and_sends_nothing(alice: User, dm: Conversation) -> None:
    response = logged_in(alice).post(
        f"/c/{dm.pk}/send/",
        {
            "body": "see attachment",
            "client_id": str(uuid.uuid4()),
            "files": [SimpleUploadedFile("a.pdf", EXECUTABLE)],
        },
    )

    assert response.status_code == 400
    assert "cannot be shared here" in response.content.decode()
    assert "see attachment" in response.content.decode()
    assert not Message.objects.exists()
