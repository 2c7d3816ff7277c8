"""HR invites many people at once from a CSV: a preview with each row's errors
first (nothing changes), then only the good rows are invited."""

from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from pytest_django import DjangoCaptureOnCommitCallbacks

from accounts import invitations_csv
from accounts.models import Invitation, User
from tests.accounts.helpers import make_department

pytestmark = pytest.mark.django_db

BULK = "/admin/accounts/invitation/bulk/"


def csv_file(text: str, encoding: str = "utf-8") -> SimpleUploadedFile:
    return SimpleUploadedFile("people.csv", text.encode(encoding), content_type="text/csv")


@pytest.fixture
def hr_client(client: Client, hr_user: User) -> Client:
    client.force_login(hr_user)
    return client


@pytest.fixture
def departments(db: None) -> None:
    make_department("Sales")
    make_department("Finance")


MIXED = (
    "email,name,job_title,department,phone\n"
    "paula.neu@kontor.example,Paula Neu,Key Account Manager,Sales,+49 40 1\n"
    "not-an-address,Max Irrtum,,Sales,\n"
    "alice@kontor.example,Alice Again,,,\n"
    "jan.roth@kontor.example,Jan Roth,Accountant,finance,\n"
    "Paula.Neu@kontor.example,Paula Twice,,,\n"
    "\n"
    "lea.lang@kontor.example,Lea Lang,,Marketing,\n"
)


def test_the_preview_shows_every_row_with_its_errors_and_changes_nothing(
    hr_client: Client, alice: User, departments: None
) -> None:
    users_before = User.objects.count()

    response = hr_client.post(BULK, {"file": csv_file(MIXED)})

    assert response.status_code == 200
    page = response.content.decode()
    assert "Preview: 2 of 6 ready to invite" in page
    assert "“not-an-address” is not an email address." in page
    assert "This person already has an account." in page
    assert "Listed already on line 2." in page
    assert "There is no department “Marketing”." in page
    assert "Columns Kontor does not use were left out: phone." in page
    assert 'value="Send 2 invitations"' in page
    assert User.objects.count() == users_before
    assert not Invitation.objects.exists()
    assert mail.outbox == []


def test_parsed_rows_carry_line_numbers_departments_and_errors(alice: User, departments: None) -> None:
    parsed = invitations_csv.invitation_rows(MIXED)

    assert [(row.line, row.email, row.ok) for row in parsed.rows] == [
        (2, "paula.neu@kontor.example", True),
        (3, "not-an-address", False),
        (4, "alice@kontor.example", False),
        (5, "jan.roth@kontor.example", True),
        (6, "paula.neu@kontor.example", False),
        (8, "lea.lang@kontor.example", False),
    ]
    jan = parsed.rows[3]
    assert jan.department is not None and jan.department.name == "Finance"  # case does not matter
    assert (jan.display_name, jan.job_title) == ("Jan Roth", "Accountant")


def test_confirming_invites_only_the_good_rows_one_mail_each(
    hr_client: Client,
    alice: User,
    hr_user: User,
    departments: None,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = hr_client.post(BULK, {"csv": MIXED, "confirm": "Send"}, follow=True)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Sent 2 invitation(s)." in page
    assert "4 line(s) with errors were left out." in page
    invited = Invitation.objects.order_by("email")
    assert [i.email for i in invited] == ["jan.roth@kontor.example", "paula.neu@kontor.example"]
    assert all(i.invited_by == hr_user for i in invited)
    paula = User.objects.get(email="paula.neu@kontor.example")
    assert (paula.display_name, paula.job_title, str(paula.department), paula.is_active) == (
        "Paula Neu",
        "Key Account Manager",
        "Sales",
        False,
    )
    assert sorted(m.to[0] for m in mail.outbox) == ["jan.roth@kontor.example", "paula.neu@kontor.example"]
    assert not User.objects.filter(email="lea.lang@kontor.example").exists()


def test_a_row_that_became_invalid_after_the_preview_is_reported_and_the_rest_sent(
    hr_client: Client, departments: None, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    text = "email,name\nerste@kontor.example,Erste\nzweite@kontor.example,Zweite\n"
    parsed = invitations_csv.invitation_rows(text)
    User.objects.create_user("zweite@kontor.example", is_active=True)  # joined meanwhile

    with django_capture_on_commit_callbacks(execute=True):
        sent = invitations_csv.invitations_send(
            invited_by=User.objects.get(email="hanna.hr@kontor.example"),
            rows=parsed.rows,
            base_url="http://testserver/",
        )

    assert [i.email for i in sent.invitations] == ["erste@kontor.example"]
    assert [(row.email, problem) for row, problem in sent.failed] == [
        ("zweite@kontor.example", "This person already has an account.")
    ]
    assert len(mail.outbox) == 1


def test_excel_files_with_semicolons_bom_and_windows_umlauts_are_read(
    hr_client: Client, departments: None
) -> None:
    text = "E-Mail;Name;Title;Department\r\njoerg.baer@kontor.example;Jörg Bär;Müllerei;Sales\r\n"
    for upload in (csv_file("\ufeff" + text), csv_file(text, "cp1252")):
        response = hr_client.post(BULK, {"file": upload})

        page = response.content.decode()
        assert "Preview: 1 of 1 ready to invite" in page
        assert "Jörg Bär" in page and "Müllerei" in page


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("name,department\nPaula,Sales\n", "one of them “email”"),
        ("", "The submitted file is empty."),
        ("email,name\n\n", "lists nobody"),
        ("email\n" + "".join(f"p{i}@kontor.example\n" for i in range(501)), "At most 500 people"),
    ],
)
def test_a_file_kontor_cannot_use_gets_one_clear_error(hr_client: Client, text: str, error: str) -> None:
    response = hr_client.post(BULK, {"file": csv_file(text)})

    assert response.status_code == 200
    page = response.content.decode()
    assert error in page
    assert "Preview" not in page
    assert not Invitation.objects.exists()


def test_a_file_that_is_not_text_or_too_large_is_refused(hr_client: Client) -> None:
    with pytest.raises(ValidationError, match="larger than"):
        invitations_csv.decode(b"x" * (invitations_csv.MAX_BYTES + 1))
    response = hr_client.post(BULK, {"file": SimpleUploadedFile("p.csv", b"\x81\x8d\x8f\x90\x9d")})
    assert "The file is not text" in response.content.decode()


def test_the_invitation_list_links_to_the_bulk_upload(hr_client: Client) -> None:
    page = hr_client.get("/admin/accounts/invitation/").content.decode()

    assert f'href="{BULK}"' in page and "Invite several (CSV)" in page
    assert "Check the file" in hr_client.get(BULK).content.decode()


def test_an_ordinary_user_cannot_upload_or_confirm(client: Client, alice: User) -> None:
    client.force_login(alice)

    for response in (
        client.get(BULK),
        client.post(BULK, {"file": csv_file(MIXED)}),
        client.post(BULK, {"csv": "email\nx@kontor.example\n", "confirm": "Send"}),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    assert not Invitation.objects.exists()


def test_staff_without_the_invitation_permission_is_refused(client: Client) -> None:
    clerk = User.objects.create_user("clerk@kontor.example", is_staff=True)
    client.force_login(clerk)

    assert client.get(BULK).status_code == 403


def test_the_csv_stays_exactly_as_uploaded_between_preview_and_confirmation(
    hr_client: Client, departments: None
) -> None:
    text = 'email,name\n"lena.licht@kontor.example","Licht, Lena"\n'

    page = hr_client.post(BULK, {"file": csv_file(text)}).content.decode()
    kept: Any = page.split('<textarea name="csv" hidden>\n', 1)[1].split("</textarea>", 1)[0]

    assert kept.replace("&quot;", '"') == text
    assert "Licht, Lena" in page
