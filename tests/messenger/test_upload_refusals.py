"""Every refusal of ``POST /files/upload/`` speaks the protocol.

docs/protocol.md ("Sending files"): the answer is ``201`` with a file object, or a
``4xx`` with ``{"error": "<code>", "detail": "<reason to show>"}``, and a refused
upload stores nothing. Django's own refusals (its HTML "Bad Request (400)" page
for a body it cannot parse, "403 Forbidden" for CSRF, an empty 405) must not
reach the client, which shows ``detail`` to the person uploading.
"""

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import User
from archive.models import StoredFile
from archive.validation import NAME_MAX
from tests.archive.conftest import PDF

pytestmark = pytest.mark.django_db

BOUNDARY = "kontor-test-boundary"


@pytest.fixture
def media(file_storage: Path) -> Path:
    return file_storage


def logged_in(user: User, **client_options: Any) -> Client:
    client = Client(**client_options)
    client.force_login(user)
    return client


def part(name: str, data: bytes, field: str = "file") -> bytes:
    """One multipart part as a browser sends it (the name raw in UTF-8, unshortened)."""
    head = (
        f'Content-Disposition: form-data; name="{field}"; filename="{name}"\r\nContent-Type: application/pdf'
    )
    return f"--{BOUNDARY}\r\n{head}\r\n\r\n".encode() + data + b"\r\n"


def raw_upload(client: Client, *parts: bytes) -> Any:
    body = b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
    return client.post("/files/upload/", data=body, content_type=f"multipart/form-data; boundary={BOUNDARY}")


def assert_refused(response: Any, status: int, code: str, media: Path) -> None:
    """The documented shape, a reason to show, and nothing kept."""
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == code
    assert body["detail"].strip()
    assert not StoredFile.objects.exists()
    assert not [path for path in media.rglob("*") if path.is_file()]


@pytest.mark.parametrize("letter", ["a", "ä", "日"], ids=["latin", "umlaut", "cjk"])
def test_a_five_thousand_character_name_is_accepted_and_shortened(
    alice: User, media: Path, letter: str
) -> None:
    name = letter * 5000 + ".pdf"

    response = raw_upload(logged_in(alice), part(name, PDF))

    assert response.status_code == 201, response.content[:300]
    shown = response.json()["name"]
    assert len(shown) <= NAME_MAX
    assert shown.startswith(letter * 100)
    assert shown.endswith("….pdf")  # the extension stays, the cut is visible
    assert response.json()["type"] == "application/pdf"
    assert StoredFile.objects.get().name == shown


def test_a_name_too_long_to_read_is_refused_in_json(alice: User, media: Path) -> None:
    # Beyond the 64 KiB a part's headers may take: refused, not a Django 400 page.
    response = raw_upload(logged_in(alice), part("a" * 70_000 + ".pdf", PDF))

    assert_refused(response, 400, "name_too_long", media)


def test_a_long_extension_is_cut_as_part_of_the_name(alice: User, media: Path) -> None:
    response = raw_upload(logged_in(alice), part("report." + "x" * 240, b"plain words\n"))

    # The name claims no type it could lie about: the bytes decide (plain text).
    assert response.status_code == 201, response.content[:300]
    assert response.json()["name"] == "report." + "x" * (NAME_MAX - 8) + "…"


def test_a_body_that_is_not_multipart_is_refused_in_json(alice: User, media: Path) -> None:
    client = logged_in(alice)

    no_boundary = client.post("/files/upload/", data=b"garbage", content_type="multipart/form-data")
    assert_refused(no_boundary, 400, "malformed", media)
    broken = client.post(
        "/files/upload/", data=b"--x\r\nbroken", content_type="multipart/form-data; boundary=\x00"
    )
    assert_refused(broken, 400, "malformed", media)


def test_a_post_without_the_file_field_is_refused_in_json(alice: User, media: Path) -> None:
    client = logged_in(alice)

    assert_refused(client.post("/files/upload/", {"note": "no file"}), 400, "no_file", media)
    assert_refused(raw_upload(client, part("offer.pdf", PDF, field="document")), 400, "no_file", media)
    json_body = client.post("/files/upload/", data=b'{"file": "x"}', content_type="application/json")
    assert_refused(json_body, 400, "no_file", media)


def test_a_file_over_the_limit_is_refused_in_json(alice: User, media: Path, settings: Any) -> None:
    settings.KONTOR_UPLOAD_MAX_BYTES = 100

    streamed = raw_upload(logged_in(alice), part("big.txt", b"x" * 5000))

    assert_refused(streamed, 413, "too_large", media)


def test_form_fields_over_djangos_memory_limit_are_refused_in_json(
    alice: User, media: Path, settings: Any
) -> None:
    # DATA_UPLOAD_MAX_MEMORY_SIZE bounds the fields besides the file: Django
    # raises RequestDataTooBig, which used to become its HTML 400 page.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client = logged_in(alice)

    response = client.post(
        "/files/upload/", {"note": "x" * 2000, "file": SimpleUploadedFile("offer.pdf", PDF)}
    )

    assert_refused(response, 413, "too_large", media)


def test_too_many_parts_are_refused_in_json(alice: User, media: Path, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 1
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 3
    client = logged_in(alice)

    files = raw_upload(client, part("one.pdf", PDF), part("two.pdf", PDF, field="more"))
    assert_refused(files, 400, "malformed", media)
    fields = client.post(
        "/files/upload/", {f"field{n}": "x" for n in range(10)} | {"file": SimpleUploadedFile("a.pdf", PDF)}
    )
    assert_refused(fields, 400, "malformed", media)


def test_a_csrf_failure_is_refused_in_json(alice: User, media: Path) -> None:
    client = logged_in(alice, enforce_csrf_checks=True)
    token = str(client.get("/").context["csrf_token"])  # the page's token, as the page's script reads it

    missing = client.post(
        "/files/upload/",
        {"file": SimpleUploadedFile("offer.pdf", PDF)},
        headers={"Accept": "application/json"},
    )
    assert_refused(missing, 403, "csrf_failed", media)
    wrong = client.post(
        "/files/upload/",
        {"file": SimpleUploadedFile("offer.pdf", PDF)},
        headers={"Accept": "application/json", "X-CSRFToken": "x" * 64},
    )
    assert_refused(wrong, 403, "csrf_failed", media)

    accepted = client.post(
        "/files/upload/",
        {"file": SimpleUploadedFile("offer.pdf", PDF)},
        headers={"Accept": "application/json", "X-CSRFToken": token},
    )
    assert accepted.status_code == 201


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "head", "options"])
def test_other_methods_are_refused_in_json(alice: User, media: Path, method: str) -> None:
    response = getattr(logged_in(alice), method)("/files/upload/")

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    if method != "head":  # a HEAD answer has no body
        assert_refused(response, 405, "method_not_allowed", media)


def test_anonymous_upload_is_refused_in_json(media: Path) -> None:
    response = Client().post(
        "/files/upload/",
        data=b"x",
        content_type="multipart/form-data; boundary=x",
        headers={"Accept": "application/json"},
    )

    assert_refused(response, 401, "not_authenticated", media)


def test_a_dot_inside_a_name_is_not_taken_for_an_extension(alice: User, media: Path) -> None:
    response = raw_upload(logged_in(alice), part("Protokoll 12.05. Besprechung", PDF))

    assert response.status_code == 201, response.content[:300]
    assert (response.json()["name"], response.json()["type"]) == (
        "Protokoll 12.05. Besprechung",
        "application/pdf",
    )
