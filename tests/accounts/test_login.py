"""Signing in and out through allauth's pages, by email address."""

import re

import pytest
from django.test import Client

from accounts.models import User
from tests.accounts.helpers import log_in, set_fast_password
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def _is_signed_in(client: Client) -> bool:
    return client.get("/").status_code == 200


def _login_error(html: str) -> str:
    match = re.search(r'<div class="alert alert--error" role="alert">(.*?)</div>', html, re.S)
    assert match is not None, "the login page shows no error"
    return match.group(1).strip()


def test_member_signs_in_with_email_and_password(client: Client, alice: User) -> None:
    set_fast_password(alice)

    log_in(client, "alice@kontor.example")

    response = client.get("/")
    assert response.status_code == 200
    assert "Good to see you, Alice." in response.content.decode()


def test_email_is_case_insensitive_at_sign_in(client: Client, alice: User) -> None:
    set_fast_password(alice)

    log_in(client, "  Alice@KONTOR.example ")

    assert _is_signed_in(client)


def test_wrong_password_and_unknown_email_get_the_same_error(client: Client, alice: User) -> None:
    set_fast_password(alice)

    wrong_password = client.post("/accounts/login/", {"login": alice.email, "password": "not-her-password"})
    unknown_email = client.post("/accounts/login/", {"login": "nobody@kontor.example", "password": PASSWORD})

    assert wrong_password.status_code == unknown_email.status_code == 200
    error = _login_error(wrong_password.content.decode())
    assert error == _login_error(unknown_email.content.decode())
    assert "not correct" in error
    assert not _is_signed_in(client)


def test_invited_person_cannot_sign_in_before_accepting(client: Client) -> None:
    # Invited, not yet accepted: inactive and never signed in. Even with a
    # password set (by an admin, say) the account stays closed.
    invited = make_user(email="ines.invited@kontor.example", is_active=False)
    set_fast_password(invited)
    assert invited.status == User.Status.INVITED

    response = client.post("/accounts/login/", {"login": invited.email, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/inactive/"
    assert "This account is inactive." in client.get(response["Location"]).content.decode()
    assert not _is_signed_in(client)


def test_member_signs_out_with_post(client: Client, alice: User) -> None:
    client.force_login(alice)

    # A GET only asks for confirmation: a link or an <img> cannot sign anyone out.
    client.get("/accounts/logout/")
    assert _is_signed_in(client)

    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert not _is_signed_in(client)
    assert client.get("/")["Location"].startswith("/accounts/login/")
