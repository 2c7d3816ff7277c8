"""The tasks that run after an upload commits: thumbnails and extracted text."""

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from PIL import Image
from pytest_django import DjangoCaptureOnCommitCallbacks

from accounts.models import User
from archive import previews, services, tasks
from archive.models import StoredFile
from config.celery import app as celery_app
from tests.archive.conftest import PDF, png_bytes
from tests.archive.documents import jpeg_rotated, picture_pdf, text_pdf, word_document

pytestmark = pytest.mark.django_db

READY, FAILED, PENDING, NONE = (
    StoredFile.State.READY,
    StoredFile.State.FAILED,
    StoredFile.State.PENDING,
    StoredFile.State.NONE,
)


def store(user: User, data: bytes, name: str) -> StoredFile:
    return services.file_store(upload=io.BytesIO(data), name=name, uploader=user)


def preview_image(stored: StoredFile) -> Image.Image:
    with default_storage.open(stored.preview_key, "rb") as handle:
        image = Image.open(io.BytesIO(handle.read()))
        image.load()
    return image


def test_a_thumbnail_appears_after_the_preview_task_runs(alice: User) -> None:
    stored = store(alice, png_bytes((2000, 1000)), "plan.png")
    assert (stored.preview_state, stored.preview_key) == (PENDING, "")

    assert tasks.make_preview(stored.pk) == READY

    stored.refresh_from_db()
    assert stored.preview_state == READY
    assert stored.preview_key.startswith(f"previews/{stored.sha256}-640.")
    image = preview_image(stored)
    assert image.size == (640, 320)
    assert image.format in ("WEBP", "PNG")


def test_a_preview_is_turned_upright_and_carries_no_metadata(alice: User) -> None:
    stored = store(alice, jpeg_rotated((200, 100)), "sideways.jpg")

    tasks.make_preview(stored.pk)

    stored.refresh_from_db()
    image = preview_image(stored)
    assert image.size == (100, 200)
    assert not image.getexif()
    assert "exif" not in image.info and "icc_profile" not in image.info
    with default_storage.open(stored.preview_key, "rb") as handle:
        assert b"Kontor Test Camera" not in handle.read()


def test_the_same_content_shares_one_preview(alice: User, bob: User, file_storage: Path) -> None:
    first, second = store(alice, png_bytes((900, 900)), "a.png"), store(bob, png_bytes((900, 900)), "b.png")

    tasks.make_preview(first.pk)
    tasks.make_preview(second.pk)

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.preview_key == second.preview_key
    assert len(list((file_storage / "previews").iterdir())) == 1


def test_a_pdf_gets_a_preview_of_its_first_page(alice: User) -> None:
    stored = store(alice, picture_pdf((800, 1000), "red"), "poster.pdf")
    assert stored.preview_state == PENDING

    assert tasks.make_preview(stored.pk) == READY

    stored.refresh_from_db()
    image = preview_image(stored).convert("RGB")
    assert max(image.size) == 640
    assert image.size[0] < image.size[1]  # portrait, like the page
    red, green, blue = image.getpixel((image.size[0] // 2, image.size[1] // 2))  # type: ignore[misc]
    assert red > 200 and green < 60 and blue < 60


def test_text_is_extracted_from_a_pdf(alice: User) -> None:
    stored = store(alice, text_pdf("Nordhafen Angebot"), "angebot.pdf")
    assert stored.text_state == PENDING

    assert tasks.extract_text(stored.pk) == READY

    stored.refresh_from_db()
    assert (stored.text_state, stored.text) == (READY, "Nordhafen Angebot")


def test_text_is_extracted_from_a_word_document_with_its_tables(alice: User) -> None:
    data = word_document(
        ["Quartalsbericht   Hafenlogistik", "Zweiter Absatz"], ["Zelle Kiel", "Zelle Rostock"]
    )
    stored = store(alice, data, "bericht.docx")

    assert tasks.extract_text(stored.pk) == READY

    stored.refresh_from_db()
    assert stored.text == "Quartalsbericht Hafenlogistik Zweiter Absatz Zelle Kiel Zelle Rostock"


def test_text_is_extracted_from_plain_text_and_csv(alice: User) -> None:
    note = store(alice, "Lieferung\tnach\n\n  Lübeck\r\n".encode(), "note.txt")
    table = store(alice, b"ort,menge\nWismar,12\n", "mengen.csv")

    tasks.extract_text(note.pk)
    tasks.extract_text(table.pk)

    note.refresh_from_db()
    table.refresh_from_db()
    assert note.text == "Lieferung nach Lübeck"
    assert table.text == "ort,menge Wismar,12"
    assert note.preview_state == NONE


def test_a_damaged_pdf_ends_failed_without_raising(alice: User, caplog: pytest.LogCaptureFixture) -> None:
    stored = store(alice, b"%PDF-1.7\n1 0 obj<</Type/Pages/Kids[9 0 R]>>\n\x00\xff garbage", "kaputt.pdf")

    with caplog.at_level(logging.WARNING, logger="archive.tasks"):
        assert tasks.make_preview(stored.pk) == FAILED
        assert tasks.extract_text(stored.pk) == FAILED

    stored.refresh_from_db()
    assert (stored.preview_state, stored.preview_key) == (FAILED, "")
    assert (stored.text_state, stored.text) == (FAILED, "")
    assert f"stored file {stored.pk}" in caplog.text


def test_a_pdf_without_pages_has_no_preview(alice: User) -> None:
    stored = store(alice, PDF, "leer.pdf")

    assert tasks.make_preview(stored.pk) == FAILED


def test_running_a_task_twice_does_nothing_the_second_time(alice: User, monkeypatch: Any) -> None:
    stored = store(alice, text_pdf("Nordhafen"), "a.pdf")
    calls: list[str] = []
    real_preview, real_text = previews.preview_store, tasks.extraction.extract_text

    def counted_preview(stored: StoredFile) -> str:
        calls.append("preview")
        return real_preview(stored)

    def counted_text(stored: StoredFile) -> str:
        calls.append("text")
        return real_text(stored)

    monkeypatch.setattr(previews, "preview_store", counted_preview)
    monkeypatch.setattr(tasks.extraction, "extract_text", counted_text)

    assert (tasks.make_preview(stored.pk), tasks.extract_text(stored.pk)) == (READY, READY)
    assert (tasks.make_preview(stored.pk), tasks.extract_text(stored.pk)) == ("skipped", "skipped")

    assert calls == ["preview", "text"]
    stored.refresh_from_db()
    assert (stored.preview_state, stored.text_state, stored.text) == (READY, READY, "Nordhafen")


def test_a_late_duplicate_cannot_overwrite_the_recorded_outcome(alice: User) -> None:
    stored = store(alice, text_pdf("Erstes Ergebnis"), "a.pdf")

    assert services.file_set_text(file_id=stored.pk, state=READY, text="Erstes Ergebnis")
    assert not services.file_set_text(file_id=stored.pk, state=FAILED, text="")

    stored.refresh_from_db()
    assert (stored.text_state, stored.text) == (READY, "Erstes Ergebnis")


def test_a_task_for_a_file_that_is_gone_returns_quietly(db: None) -> None:
    assert tasks.make_preview(987654) == "skipped"
    assert tasks.extract_text(987654) == "skipped"


def test_the_tasks_have_stable_names_and_time_limits() -> None:
    for task, name in (
        (tasks.make_preview, "archive.make_preview"),
        (tasks.extract_text, "archive.extract_text"),
    ):
        assert task.name == name
        assert (task.time_limit, task.soft_time_limit, task.acks_late) == (120, 100, True)


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Tasks sent with ``delay`` run at once, in the test."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


def test_an_upload_schedules_both_tasks_only_after_commit(
    alice: User, eager_tasks: None, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        stored = store(alice, text_pdf("Nordhafen Angebot"), "angebot.pdf")
    assert len(callbacks) == 1
    stored.refresh_from_db()
    assert (stored.preview_state, stored.text_state) == (PENDING, PENDING)

    callbacks[0]()

    stored.refresh_from_db()
    assert (stored.preview_state, stored.text_state, stored.text) == (READY, READY, "Nordhafen Angebot")
