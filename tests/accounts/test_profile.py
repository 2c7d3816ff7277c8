"""A person edits their own profile: name, title, phone, time zone and picture."""

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image, PngImagePlugin
from pytest_django import DjangoCaptureOnCommitCallbacks

from accounts.models import User

pytestmark = pytest.mark.django_db


def _profile_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "display_name": "Alice Adler-Berg",
        "job_title": "Head of Sales",
        "phone": "+49 30 555 0100",
        "time_zone": "Europe/Berlin",
        "email_notifications": "delayed",
        "email_notification_delay": "10",
    }
    data.update(overrides)
    return data


def _png(width: int = 640, height: int = 480, colour: str = "teal") -> SimpleUploadedFile:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "taken at Alice's home, GPS 52.52N 13.40E")
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG", pnginfo=info)
    return SimpleUploadedFile("me.png", buffer.getvalue(), content_type="image/png")


def _broken_png() -> SimpleUploadedFile:
    """A PNG whose chunks are well-formed (it passes a quick check) but whose pixels cannot be decoded."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, format="PNG")
    data, out, pos = buffer.getvalue(), buffer.getvalue()[:8], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IDAT":
            body = b"\x78\x9c" + b"\xff" * 40
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        pos += 12 + length
    return SimpleUploadedFile("me.png", out, content_type="image/png")


def _files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


@pytest.fixture
def alice_client(client: Client, alice: User) -> Client:
    client.force_login(alice)
    return client


def test_member_edits_name_title_phone_and_time_zone(alice_client: Client, alice: User) -> None:
    response = alice_client.post("/profile/", _profile_data())

    assert response.status_code == 302
    assert response["Location"] == "/profile/"
    assert "Your profile is saved." in alice_client.get("/profile/").content.decode()
    alice.refresh_from_db()
    assert alice.display_name == "Alice Adler-Berg"
    assert alice.job_title == "Head of Sales"
    assert alice.phone == "+49 30 555 0100"
    assert alice.time_zone == "Europe/Berlin"


def test_profile_form_shows_the_current_values(alice_client: Client) -> None:
    page = alice_client.get("/profile/").content.decode()

    assert 'value="Alice Adler"' in page
    assert '<option value="UTC" selected>' in page


def test_invalid_time_zone_is_refused_and_nothing_changes(alice_client: Client, alice: User) -> None:
    response = alice_client.post("/profile/", _profile_data(time_zone="Mars/Olympus_Mons"))

    assert response.status_code == 200
    assert "Select a valid choice." in response.content.decode()
    alice.refresh_from_db()
    assert alice.display_name == "Alice Adler"
    assert alice.time_zone == "UTC"


def test_empty_name_is_refused(alice_client: Client, alice: User) -> None:
    response = alice_client.post("/profile/", _profile_data(display_name="   "))

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    alice.refresh_from_db()
    assert alice.display_name == "Alice Adler"


def test_uploaded_avatar_is_stored_as_a_square_png(
    alice_client: Client, alice: User, media_root: Path
) -> None:
    response = alice_client.post("/profile/", _profile_data(avatar=_png()))

    assert response.status_code == 302
    alice.refresh_from_db()
    name = str(alice.avatar.name)
    assert name.startswith("avatars/")
    assert name.endswith(".png")
    [stored] = _files(media_root)
    with Image.open(stored) as image:
        assert image.format == "PNG"
        assert image.size == (256, 256)
        # Re-encoded: nothing of the original file's metadata survives.
        assert "Comment" not in image.info
    assert b"GPS" not in stored.read_bytes()


def test_avatar_is_served_to_signed_in_colleagues_only(
    alice_client: Client, alice: User, bob: User, media_root: Path
) -> None:
    alice_client.post("/profile/", _profile_data(avatar=_png()))
    alice.refresh_from_db()
    url = f"/people/{alice.pk}/avatar.png"
    assert f'src="{url}"' in alice_client.get("/").content.decode()
    stored = _files(media_root)[0].read_bytes()

    anonymous = Client().get(url)
    colleague = Client()
    colleague.force_login(bob)
    response = colleague.get(url)

    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert "private" in response["Cache-Control"]
    assert b"".join(response.streaming_content) == stored  # type: ignore[attr-defined]


def test_person_without_a_picture_has_no_avatar_url(alice_client: Client, alice: User) -> None:
    assert alice_client.get(f"/people/{alice.pk}/avatar.png").status_code == 404
    assert alice_client.get("/people/999999/avatar.png").status_code == 404


def test_file_that_is_not_an_image_is_refused_and_nothing_changes(
    alice_client: Client, alice: User, media_root: Path
) -> None:
    fake = SimpleUploadedFile("me.png", b"<script>alert(1)</script>" * 20, content_type="image/png")

    response = alice_client.post("/profile/", _profile_data(avatar=fake))

    assert response.status_code == 200
    assert "Upload a valid image." in response.content.decode()
    alice.refresh_from_db()
    assert not alice.avatar
    assert alice.display_name == "Alice Adler"
    assert _files(media_root) == []


def test_picture_that_cannot_be_decoded_is_refused_and_nothing_changes(
    alice_client: Client, alice: User, media_root: Path
) -> None:
    response = alice_client.post("/profile/", _profile_data(avatar=_broken_png()))

    assert response.status_code == 200
    assert "This file is not a picture Kontor can read." in response.content.decode()
    alice.refresh_from_db()
    assert not alice.avatar
    assert alice.display_name == "Alice Adler"
    assert _files(media_root) == []


def test_new_picture_replaces_the_old_file(
    alice_client: Client,
    alice: User,
    media_root: Path,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    alice_client.post("/profile/", _profile_data(avatar=_png(colour="red")))
    alice.refresh_from_db()
    old_name = alice.avatar.name

    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post("/profile/", _profile_data(avatar=_png(colour="blue")))

    alice.refresh_from_db()
    assert alice.avatar.name != old_name
    assert [path.name for path in _files(media_root)] == [Path(str(alice.avatar.name)).name]


def test_member_removes_their_picture(
    alice_client: Client,
    alice: User,
    media_root: Path,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    alice_client.post("/profile/", _profile_data(avatar=_png()))

    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post("/profile/", _profile_data(remove_avatar="on"))

    alice.refresh_from_db()
    assert not alice.avatar
    assert _files(media_root) == []
    assert alice_client.get(f"/people/{alice.pk}/avatar.png").status_code == 404


def test_anonymous_visitor_is_sent_to_sign_in(client: Client) -> None:
    response = client.get("/profile/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_turning_off_read_receipts_on_the_profile_page(client: Client, alice: User) -> None:
    client.force_login(alice)
    response = client.post(
        "/profile/",
        {"display_name": "Alice Adler", "job_title": "", "phone": "", "time_zone": "UTC"},
    )

    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.send_read_receipts is False


def test_person_chooses_when_missed_messages_are_mailed(alice_client: Client, alice: User) -> None:
    response = alice_client.post(
        "/profile/", _profile_data(email_notifications="digest", email_notification_delay="30")
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert (alice.email_notifications, alice.email_notification_delay) == ("digest", 30)


def test_unknown_notification_setting_is_refused_and_changes_nothing(
    alice_client: Client, alice: User
) -> None:
    response = alice_client.post("/profile/", _profile_data(email_notifications="hourly"))
    assert response.status_code == 200
    assert "hourly is not one of the available choices" in response.content.decode()
    alice.refresh_from_db()
    assert alice.email_notifications == "delayed"
