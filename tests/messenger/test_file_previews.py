"""Thumbnails in conversations: served inline to members only, once made."""

import io

import pytest
from django.test import Client
from PIL import Image

from accounts.models import User
from archive import services as archive_services
from archive import tasks
from archive.models import StoredFile
from messenger import services
from messenger.events import file_payload
from messenger.models import Conversation
from tests.archive.conftest import png_bytes
from tests.archive.documents import picture_pdf

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("file_storage")]


def share(author: User, conversation: Conversation, data: bytes, name: str) -> StoredFile:
    stored = archive_services.file_store(upload=io.BytesIO(data), name=name, uploader=author)
    services.message_send(
        actor=author, conversation_id=conversation.pk, body="Schau mal", file_ids=[stored.pk]
    )
    return stored


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_member_gets_the_thumbnail_inline(alice: User, bob: User, dm: Conversation) -> None:
    stored = share(alice, dm, png_bytes((1600, 1200)), "hafen.png")
    tasks.make_preview(stored.pk)

    response = logged_in(bob).get(f"/files/{stored.pk}/preview/")

    assert response.status_code == 200
    assert response["Content-Type"] in ("image/webp", "image/png")
    assert response["Content-Disposition"].startswith("inline")
    assert response["X-Content-Type-Options"] == "nosniff"
    image = Image.open(io.BytesIO(response.getvalue()))
    assert image.size == (640, 480)


def test_a_pdf_preview_is_served_as_an_image(alice: User, bob: User, dm: Conversation) -> None:
    stored = share(alice, dm, picture_pdf(), "poster.pdf")
    tasks.make_preview(stored.pk)

    response = logged_in(bob).get(f"/files/{stored.pk}/preview/")

    assert response.status_code == 200
    assert response["Content-Type"] in ("image/webp", "image/png")


def test_there_is_no_preview_until_the_task_ran(alice: User, bob: User, dm: Conversation) -> None:
    stored = share(alice, dm, png_bytes(), "hafen.png")

    assert logged_in(bob).get(f"/files/{stored.pk}/preview/").status_code == 404


def test_an_outsider_gets_404_for_a_preview(alice: User, charlie: User, dm: Conversation) -> None:
    stored = share(alice, dm, png_bytes(), "hafen.png")
    tasks.make_preview(stored.pk)

    assert logged_in(charlie).get(f"/files/{stored.pk}/preview/").status_code == 404


def test_anonymous_is_sent_to_sign_in_for_a_preview(alice: User, dm: Conversation) -> None:
    stored = share(alice, dm, png_bytes(), "hafen.png")
    tasks.make_preview(stored.pk)

    response = Client().get(f"/files/{stored.pk}/preview/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_deleted_messages_preview_disappears(alice: User, bob: User, dm: Conversation) -> None:
    stored = archive_services.file_store(upload=io.BytesIO(png_bytes()), name="a.png", uploader=alice)
    sent = services.message_send(actor=alice, conversation_id=dm.pk, body="", file_ids=[stored.pk])
    tasks.make_preview(stored.pk)
    services.message_delete(actor=alice, message_id=sent.message.pk)

    assert logged_in(bob).get(f"/files/{stored.pk}/preview/").status_code == 404


def test_the_file_payload_names_the_preview_once_it_is_ready(alice: User) -> None:
    stored = archive_services.file_store(upload=io.BytesIO(png_bytes()), name="a.png", uploader=alice)
    assert (file_payload(stored)["preview"], file_payload(stored)["preview_state"]) == (None, "pending")

    tasks.make_preview(stored.pk)
    stored.refresh_from_db()

    assert file_payload(stored)["preview"] == f"/files/{stored.pk}/preview/"
    assert file_payload(stored)["preview_state"] == "ready"


def test_the_conversation_shows_a_placeholder_then_the_thumbnail(
    alice: User, bob: User, dm: Conversation
) -> None:
    stored = share(alice, dm, png_bytes(), "hafen.png")
    page = logged_in(bob).get(f"/c/{dm.pk}/").content.decode()
    assert "data-preview-pending" in page and "hafen.png" in page
    assert f"/files/{stored.pk}/preview/" not in page

    tasks.make_preview(stored.pk)
    page = logged_in(bob).get(f"/c/{dm.pk}/").content.decode()

    assert f'src="/files/{stored.pk}/preview/"' in page
    assert "data-preview-pending" not in page
