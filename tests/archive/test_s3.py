"""Files on a real S3 protocol endpoint: upload, download through the permission
check, and presigned URLs.

moto's standalone server speaks S3 over HTTP on loopback, started here for this
module. django-storages talks to it exactly as it would to AWS S3 or MinIO. moto
does not check presigned signatures or their expiry, so tampering and expiry are
not tested against it; the URLs are checked for carrying them instead.
"""

import hashlib
import io
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from moto.server import ThreadedMotoServer
from storages.backends.s3 import S3Storage

from accounts.models import User
from archive import services as archive_services
from archive.errors import FileRefused
from archive.models import StoredFile
from messenger import services
from messenger.models import Conversation
from tests.archive.conftest import EXECUTABLE, PDF, png_bytes

pytestmark = pytest.mark.django_db

BUCKET = "kontor-files"
REGION = "us-east-1"
ACCESS_KEY = "kontor-test-access"
SECRET_KEY = "kontor-test-secret"
EXPIRY_SECONDS = 60


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    client: Any  # boto3's S3 client

    def object_keys(self) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=BUCKET)
        return [item["Key"] for item in listing.get("Contents", [])]

    def read(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return body


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[S3Endpoint]:
    """An S3 server on a free loopback port, with one private bucket."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=boto3.session.Config(s3={"addressing_style": "path"}),
        )
        client.create_bucket(Bucket=BUCKET)
        yield S3Endpoint(url=url, client=client)
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def file_storage(settings: Any, s3_endpoint: S3Endpoint) -> S3Endpoint:
    """Replaces the archive's filesystem storage: every test starts with an empty bucket.

    Changing ``STORAGES`` sends ``setting_changed``, which makes Django drop its
    cached ``default_storage``; the next access builds the S3 backend below.
    """
    for key in s3_endpoint.object_keys():
        s3_endpoint.client.delete_object(Bucket=BUCKET, Key=key)
    settings.KONTOR_STORAGE = "s3"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_endpoint.url,
                "region_name": REGION,
                "access_key": ACCESS_KEY,
                "secret_key": SECRET_KEY,
                "addressing_style": "path",
                "default_acl": None,
                "file_overwrite": True,
                "querystring_auth": True,
                "querystring_expire": EXPIRY_SECONDS,
            },
        },
    }
    return s3_endpoint


def store(data: bytes, name: str, user: User) -> StoredFile:
    return archive_services.file_store(upload=io.BytesIO(data), name=name, uploader=user)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def fetch(url: str) -> tuple[bytes, dict[str, str]]:
    """GET a URL directly, as the browser does after the redirect (no proxies)."""
    assert urlsplit(url).scheme in ("http", "https")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        return response.read(), dict(response.headers.items())


def signed_query(url: str, endpoint: S3Endpoint) -> dict[str, str]:
    """The query of a presigned URL to the endpoint; asserts it carries a signature and a lifetime."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == endpoint.url
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    if "X-Amz-Signature" in query:  # Signature Version 4
        assert query["X-Amz-Expires"] == str(EXPIRY_SECONDS)
        assert query["X-Amz-Credential"].startswith(f"{ACCESS_KEY}/")
    else:  # Signature Version 2
        assert query["Signature"] and query["Expires"].isdigit()
        assert query["AWSAccessKeyId"] == ACCESS_KEY
    return query


def test_the_storage_in_use_is_the_s3_backend(s3_endpoint: S3Endpoint) -> None:
    assert isinstance(default_storage, S3Storage)
    assert default_storage.bucket_name == BUCKET


def test_an_upload_lands_in_the_bucket_under_its_content_address(
    alice: User, s3_endpoint: S3Endpoint
) -> None:
    stored = store(PDF, "Angebot 2026.pdf", alice)

    sha256 = hashlib.sha256(PDF).hexdigest()
    assert stored.sha256 == sha256
    assert (
        stored.storage_key
        == archive_services.blob_key(sha256)
        == f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"
    )
    assert s3_endpoint.object_keys() == [stored.storage_key]
    kept = s3_endpoint.read(stored.storage_key)
    assert kept == PDF
    assert hashlib.sha256(kept).hexdigest() == stored.sha256
    assert stored.size == len(kept)


def test_the_same_bytes_uploaded_twice_are_one_object(
    alice: User, bob: User, s3_endpoint: S3Endpoint
) -> None:
    first = store(PDF, "offer.pdf", alice)
    second = store(PDF, "copy of offer.pdf", bob)

    assert first.pk != second.pk
    assert first.storage_key == second.storage_key
    assert (second.name, second.uploaded_by) == ("copy of offer.pdf", bob)
    assert s3_endpoint.object_keys() == [first.storage_key]
    assert s3_endpoint.read(first.storage_key) == PDF


def test_an_upload_over_http_is_stored_in_the_bucket(alice: User, s3_endpoint: S3Endpoint) -> None:
    response = logged_in(alice).post(
        "/files/upload/", {"file": SimpleUploadedFile("Angebot.pdf", PDF, content_type="application/pdf")}
    )

    assert response.status_code == 201
    stored = StoredFile.objects.get()
    assert s3_endpoint.object_keys() == [stored.storage_key]
    assert s3_endpoint.read(stored.storage_key) == PDF


def test_a_member_is_redirected_to_a_presigned_url_with_the_exact_bytes(
    alice: User, bob: User, dm: Conversation, s3_endpoint: S3Endpoint
) -> None:
    stored = store(PDF, "Angebot Müller.pdf", alice)
    services.message_send(actor=alice, conversation_id=dm.pk, body="", file_ids=[stored.pk])

    response = logged_in(bob).get(f"/files/{stored.pk}/")

    assert response.status_code == 302
    url = response["Location"]
    assert unquote(urlsplit(url).path) == f"/{BUCKET}/{stored.storage_key}"
    query = signed_query(url, s3_endpoint)
    disposition = query["response-content-disposition"]
    assert disposition.startswith("attachment;")
    assert "Angebot" in disposition
    assert query["response-content-type"] == "application/pdf"
    body, headers = fetch(url)
    assert body == PDF
    assert hashlib.sha256(body).hexdigest() == stored.sha256
    assert headers["Content-Disposition"].startswith("attachment;")


def test_pictures_shown_in_the_page_come_through_kontor_and_pdfs_stay_attachments(
    alice: User, bob: User, dm: Conversation, s3_endpoint: S3Endpoint
) -> None:
    """The page's CSP allows images from Kontor only, so inline pictures are
    streamed (from the bucket) by Kontor; every other download is a signed link."""
    picture, pdf = store(png_bytes(), "photo.png", alice), store(PDF, "offer.pdf", alice)
    services.message_send(actor=alice, conversation_id=dm.pk, body="", file_ids=[picture.pk, pdf.pk])
    bob_client = logged_in(bob)

    shown = bob_client.get(f"/files/{picture.pk}/?inline=1")
    pdf_url = bob_client.get(f"/files/{pdf.pk}/?inline=1")["Location"]

    assert shown.status_code == 200
    assert shown["Content-Disposition"].startswith("inline")
    assert b"".join(shown.streaming_content) == png_bytes()  # type: ignore[attr-defined]
    assert signed_query(pdf_url, s3_endpoint)["response-content-disposition"].startswith("attachment;")


def test_an_outsider_gets_404_and_no_url(
    alice: User, charlie: User, dm: Conversation, s3_endpoint: S3Endpoint
) -> None:
    stored = store(PDF, "offer.pdf", alice)
    services.message_send(actor=alice, conversation_id=dm.pk, body="", file_ids=[stored.pk])

    response = logged_in(charlie).get(f"/files/{stored.pk}/")

    assert response.status_code == 404
    assert "Location" not in response
    assert s3_endpoint.url.encode() not in response.content
    assert b"Signature" not in response.content


def test_an_upload_not_yet_shared_is_not_handed_out_to_a_colleague(
    alice: User, bob: User, dm: Conversation
) -> None:
    stored = store(PDF, "draft.pdf", alice)  # uploaded, never sent

    response = logged_in(bob).get(f"/files/{stored.pk}/")

    assert response.status_code == 404
    assert "Location" not in response


def test_anonymous_is_sent_to_the_login_not_to_the_bucket(
    alice: User, dm: Conversation, s3_endpoint: S3Endpoint
) -> None:
    stored = store(PDF, "offer.pdf", alice)
    services.message_send(actor=alice, conversation_id=dm.pk, body="", file_ids=[stored.pk])

    response = Client().get(f"/files/{stored.pk}/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert s3_endpoint.url not in response["Location"]


def test_a_refused_upload_leaves_the_bucket_empty(alice: User, s3_endpoint: S3Endpoint) -> None:
    response = logged_in(alice).post(
        "/files/upload/", {"file": SimpleUploadedFile("invoice.pdf", EXECUTABLE)}
    )

    assert response.status_code == 400
    assert response.json()["error"] == "type_not_allowed"
    assert not StoredFile.objects.exists()
    assert s3_endpoint.object_keys() == []


def test_a_too_large_upload_leaves_the_bucket_empty(
    alice: User, s3_endpoint: S3Endpoint, settings: Any
) -> None:
    settings.KONTOR_UPLOAD_MAX_BYTES = 100

    with pytest.raises(FileRefused) as error:
        store(b"x" * 5000, "big.txt", alice)

    assert error.value.code == "too_large"
    assert not StoredFile.objects.exists()
    assert s3_endpoint.object_keys() == []
