"""Sign-up is closed unless company domains are configured."""

import pytest
from django.core import mail
from django.test import Client
from pytest_django import Settings

from accounts.models import User

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "Quiet-Harbour-Lantern-42"


def _signup(client: Client, email: str) -> str:
    response = client.post(
        "/accounts/signup/", {"email": email, "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD}
    )
    return response.content.decode()


def test_signup_without_invitation_is_refused(client: Client) -> None:
    response = client.get("/accounts/signup/")

    page = response.content.decode()
    assert "Invitation needed" in page
    assert 'name="password1"' not in page


def test_signup_post_without_invitation_creates_nobody(client: Client) -> None:
    page = _signup(client, "eve@kontor.example")

    assert "Invitation needed" in page
    assert not User.objects.exists()
    assert mail.outbox == []


def test_login_page_tells_newcomers_to_wait_for_an_invitation(client: Client) -> None:
    page = client.get("/accounts/login/").content.decode()

    assert "HR sends you an invitation link" in page
    assert 'href="/accounts/signup/"' not in page


def test_company_address_can_sign_up_when_domains_are_open(client: Client, settings: Settings) -> None:
    settings.KONTOR_SIGNUP_DOMAINS = ["kontor.example"]
    assert 'name="password1"' in client.get("/accounts/signup/").content.decode()

    _signup(client, "Dora.Dietz@Kontor.example")

    user = User.objects.get()
    assert user.email == "dora.dietz@kontor.example"
    # The address still has to be confirmed before the first sign-in.
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["dora.dietz@kontor.example"]
    assert client.get("/").status_code == 302


def test_address_at_another_domain_is_refused_with_a_clear_error(client: Client, settings: Settings) -> None:
    settings.KONTOR_SIGNUP_DOMAINS = ["kontor.example"]

    page = _signup(client, "eve@evil.example")

    assert "Only company addresses (@kontor.example) can be used here." in page
    assert not User.objects.exists()
    assert mail.outbox == []


def test_lookalike_domain_is_refused(client: Client, settings: Settings) -> None:
    settings.KONTOR_SIGNUP_DOMAINS = ["kontor.example"]

    for email in ("eve@kontor.example.evil.example", "eve@evilkontor.example", "eve@mail.kontor.example"):
        assert "Only company addresses" in _signup(client, email)

    assert not User.objects.exists()
