"""What the archive keeps, and every way an upload is refused with nothing written."""

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest

from accounts.models import User
from archive import services, validation
from archive.errors import FileRefused
from archive.models import StoredFile
from tests.archive.conftest import EXECUTABLE, PDF, png_bytes

pytestmark = pytest.mark.django_db


def store(data: bytes, name: str, user: User) -> StoredFile:
    return services.file_store(upload=io.BytesIO(data), name=name, uploader=user)


def stored_blobs(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def refused(data: bytes, name: str, user: User, root: Path) -> FileRefused:
    with pytest.raises(FileRefused) as error:
        store(data, name, user)
    assert StoredFile.objects.count() == 0
    assert stored_blobs(root) == []
    return error.value


def test_a_pdf_is_kept_with_its_hash_size_and_detected_type(alice: User, file_storage: Path) -> None:
    stored = store(PDF, "Angebot 2026.pdf", alice)

    assert stored.sha256 == hashlib.sha256(PDF).hexdigest()
    assert (stored.size, stored.content_type, stored.name) == (
        len(PDF),
        "application/pdf",
        "Angebot 2026.pdf",
    )
    assert stored.uploaded_by == alice
    assert stored.storage_key.endswith(stored.sha256)
    assert (file_storage / stored.storage_key).read_bytes() == PDF


def test_the_same_bytes_are_stored_once_but_each_upload_keeps_its_record(
    alice: User, bob: User, file_storage: Path
) -> None:
    first = store(PDF, "offer.pdf", alice)
    second = store(PDF, "copy of offer.pdf", bob)

    assert first.pk != second.pk
    assert first.storage_key == second.storage_key
    assert (second.name, second.uploaded_by) == ("copy of offer.pdf", bob)
    assert len(stored_blobs(file_storage)) == 1


def test_a_picture_records_its_size(alice: User) -> None:
    stored = store(png_bytes((64, 48)), "photo.png", alice)

    assert (stored.content_type, stored.width, stored.height) == ("image/png", 64, 48)
    assert stored.preview_state == StoredFile.State.PENDING


def test_office_and_text_files_are_recognised(alice: User) -> None:
    from docx import Document

    out = io.BytesIO()
    Document().save(out)
    assert store(out.getvalue(), "Vertrag.docx", alice).content_type.endswith("wordprocessingml.document")
    assert store("Grüße aus Hamburg\n".encode(), "notes.txt", alice).content_type == "text/plain"
    assert store(b"sku;qty\nA-1;5\n", "stock.csv", alice).content_type == "text/csv"


def test_a_file_over_the_limit_is_refused(alice: User, settings: Any, file_storage: Path) -> None:
    settings.KONTOR_UPLOAD_MAX_BYTES = 1024

    error = refused(b"x" * 2048, "big.txt", alice, file_storage)

    assert error.code == "too_large"


def test_an_executable_named_pdf_is_refused(alice: User, file_storage: Path) -> None:
    error = refused(EXECUTABLE, "invoice.pdf", alice, file_storage)

    assert error.code == "type_not_allowed"


def test_a_picture_named_pdf_is_refused_as_lying(alice: User, file_storage: Path) -> None:
    error = refused(png_bytes(), "invoice.pdf", alice, file_storage)

    assert error.code == "type_mismatch"
    assert "named .pdf" in error.detail


def test_html_and_svg_are_never_stored_as_text(alice: User, file_storage: Path) -> None:
    assert refused(b"<!DOCTYPE html><script>alert(1)</script>", "page.txt", alice, file_storage).code == (
        "type_not_allowed"
    )
    assert refused(b'<svg xmlns="http://www.w3.org/2000/svg"/>', "logo.svg", alice, file_storage).code == (
        "type_not_allowed"
    )


def test_a_decompression_bomb_is_refused(
    alice: User, monkeypatch: pytest.MonkeyPatch, file_storage: Path
) -> None:
    monkeypatch.setattr(validation, "MAX_IMAGE_PIXELS", 100 * 100)

    error = refused(png_bytes((200, 200)), "bomb.png", alice, file_storage)

    assert error.code == "image_too_large"


@pytest.mark.parametrize(
    "name", ["../../etc/passwd.txt", "..\\boot.ini.txt", "a/b.txt", "evil\x00.txt", ".."]
)
def test_a_name_that_is_a_path_is_refused(alice: User, name: str, file_storage: Path) -> None:
    error = refused(b"hello", name, alice, file_storage)

    assert error.code == "bad_name"


def test_an_empty_file_is_refused(alice: User, file_storage: Path) -> None:
    assert refused(b"", "empty.txt", alice, file_storage).code == "empty"
