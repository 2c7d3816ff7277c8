"""Invitations: one mail with a one-time link that lets a newcomer join."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.test import Client
from django.utils import timezone
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from accounts import services
from accounts.models import Invitation, User
from tests.accounts.helpers import invitation_link

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Quiet-Harbour-Lantern-42"
BASE_URL = "http://testserver/"


def _invite(
    capture: DjangoCaptureOnCommitCallbacks,
    email: str = "nora.neu@kontor.example",
    invited_by: User | None = None,
) -> tuple[Invitation, str]:
    """Invite ``email`` and return the invitation and the path of the link in the mail."""
    sent_before = len(mail.outbox)
    with capture(execute=True):
        invitation = services.invitation_create(
            invited_by=invited_by, email=email, display_name="Nora Neu", base_url=BASE_URL
        )
    assert len(mail.outbox) == sent_before + 1
    return invitation, invitation_link()


def _accept(client: Client, link: str, password: str = NEW_PASSWORD, name: str = "Nora Neumann") -> str:
    response = client.post(link, {"display_name": name, "password1": password, "password2": password})
    return response.content.decode() if response.status_code != 302 else response["Location"]


def test_invitation_sends_one_mail_with_a_one_time_link(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks, hr_user: User
) -> None:
    invitation, link = _invite(django_capture_on_commit_callbacks, invited_by=hr_user)

    message = mail.outbox[0]
    assert isinstance(message, EmailMultiAlternatives)
    assert message.to == ["nora.neu@kontor.example"]
    assert "Hanna Hofer invites you" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert isinstance(html, str)
    assert f"http://testserver{link}" in html
    # Only a hash of the token is kept: the link in the mail is the only copy.
    token = link.split("/")[2]
    assert token not in invitation.token_hash
    invited = User.objects.get(email="nora.neu@kontor.example")
    assert invited.status == User.Status.INVITED
    assert not invited.has_usable_password()


@pytest.mark.parametrize(
    ("company", "subject"),
    [
        ("Kontor", "You are invited to Kontor"),
        ("Nordhafen Logistik", "You are invited to Nordhafen Logistik on Kontor"),
    ],
)
def test_the_invitation_subject_names_the_company_once(
    company: str,
    subject: str,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    settings: Settings,
) -> None:
    settings.KONTOR_COMPANY_NAME = company
    _invite(django_capture_on_commit_callbacks)

    assert mail.outbox[-1].subject == subject


def test_no_mail_leaves_before_the_transaction_commits(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.invitation_create(invited_by=None, email="nora.neu@kontor.example", base_url=BASE_URL)

    assert mail.outbox == []
    assert len(callbacks) == 1


def test_invitation_link_shows_the_form(
    client: Client, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    _, link = _invite(django_capture_on_commit_callbacks)

    response = client.get(link)

    assert response.status_code == 200
    page = response.content.decode()
    assert "nora.neu@kontor.example" in page
    assert 'name="password1"' in page
    assert 'value="Nora Neu"' in page


def test_newcomer_accepts_invitation_and_is_signed_in(
    client: Client, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    invitation, link = _invite(django_capture_on_commit_callbacks)

    assert _accept(client, link) == "/"

    home = client.get("/")
    assert home.status_code == 200
    assert "Welcome, Nora! Your account is ready." in home.content.decode()
    user = User.objects.get(email="nora.neu@kontor.example")
    assert user.is_active
    assert user.display_name == "Nora Neumann"
    assert user.check_password(NEW_PASSWORD)
    invitation.refresh_from_db()
    assert invitation.accepted_at is not None
    assert invitation.state == "accepted"


def test_newcomer_can_sign_in_with_the_chosen_password(
    client: Client, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    _, link = _invite(django_capture_on_commit_callbacks)
    _accept(client, link)
    client.post("/accounts/logout/")

    response = client.post("/accounts/login/", {"login": "nora.neu@kontor.example", "password": NEW_PASSWORD})

    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_used_link_is_not_valid_a_second_time(
    client: Client, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    _, link = _invite(django_capture_on_commit_callbacks)
    _accept(client, link)
    client.post("/accounts/logout/")

    get = client.get(link)
    post = client.post(
        link,
        {"display_name": "Mallory", "password1": "Other-Harbour-9911", "password2": "Other-Harbour-9911"},
    )

    for response in (get, post):
        assert response.status_code == 404
        assert "This invitation link is not valid" in response.content.decode()
    user = User.objects.get(email="nora.neu@kontor.example")
    assert user.display_name == "Nora Neumann"
    assert user.check_password(NEW_PASSWORD)
    assert client.get("/").status_code == 302


def test_expired_invitation_is_refused(
    client: Client, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    invitation, link = _invite(django_capture_on_commit_callbacks)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    get = client.get(link)
    post = client.post(link, {"display_name": "Nora", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    for response in (get, post):
        assert response.status_code == 404
        assert "This invitation link is not valid" in response.content.decode()
    user = User.objects.get(email="nora.neu@kontor.example")
    assert not user.is_active
    assert not user.has_usable_password()
    invitation.refresh_from_db()
    assert invitation.state == "expired"


def test_reinviting_revokes_the_older_link(
    client: Client, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    first, old_link = _invite(django_capture_on_commit_callbacks)
    _, new_link = _invite(django_capture_on_commit_callbacks)

    assert old_link != new_link
    assert client.get(old_link).status_code == 404
    assert client.get(new_link).status_code == 200
    first.refresh_from_db()
    assert first.state == "revoked"
    assert User.objects.filter(email="nora.neu@kontor.example").count() == 1
    assert _accept(client, new_link) == "/"


def test_weak_password_gets_a_clear_error_and_changes_nothing(
    client: Client, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    invitation, link = _invite(django_capture_on_commit_callbacks)

    page = _accept(client, link, password="password")

    assert "This password is too short" in page or "This password is too common" in page
    user = User.objects.get(email="nora.neu@kontor.example")
    assert not user.is_active
    assert user.display_name == "Nora Neu"
    assert not user.has_usable_password()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None
    assert client.get(link).status_code == 200
    assert client.get("/").status_code == 302


def test_differing_passwords_are_refused(
    client: Client, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    _, link = _invite(django_capture_on_commit_callbacks)

    response = client.post(
        link, {"display_name": "Nora", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD + "x"}
    )

    assert response.status_code == 200
    assert "The two passwords differ." in response.content.decode()
    assert not User.objects.get(email="nora.neu@kontor.example").is_active


def test_unknown_token_is_not_found(client: Client) -> None:
    response = client.get("/invite/not-a-real-token/")

    assert response.status_code == 404
    assert "This invitation link is not valid" in response.content.decode()


def test_inviting_an_active_colleague_is_refused(alice: User) -> None:
    with pytest.raises(ValidationError) as error:
        services.invitation_create(invited_by=None, email="ALICE@kontor.example", base_url=BASE_URL)

    assert error.value.message_dict == {"email": ["This person already has an account."]}
    assert not Invitation.objects.exists()
    assert mail.outbox == []


def test_invited_person_cannot_sign_in_before_accepting(
    client: Client, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    _invite(django_capture_on_commit_callbacks)

    client.post("/accounts/login/", {"login": "nora.neu@kontor.example", "password": ""})
    client.post("/accounts/login/", {"login": "nora.neu@kontor.example", "password": NEW_PASSWORD})

    assert client.get("/").status_code == 302
