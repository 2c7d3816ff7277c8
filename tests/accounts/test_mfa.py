"""Two-factor authentication: enrolling an authenticator app and signing in with it."""

import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.test import Client

from accounts.models import User
from accounts.selectors import user_has_mfa
from tests.accounts.helpers import set_fast_password
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

ACTIVATE = "/accounts/2fa/totp/activate/"
MFA_STEP = "/accounts/2fa/authenticate/"
PERIOD = 30


def _current_code(secret: str) -> str:
    """The code an authenticator app shows now, never one about to expire.

    allauth accepts only the current 30 s window: a code taken with 10 s or less
    left waits for the next window, so a slow request on a loaded machine still
    arrives while its code is valid."""
    if time.time() % PERIOD > PERIOD - 10:
        time.sleep(PERIOD - time.time() % PERIOD + 0.1)
    return format_hotp_value(hotp_value(secret, int(time.time()) // PERIOD))


def _wrong_code(secret: str) -> str:
    return format_hotp_value((int(_current_code(secret)) + 1) % 1_000_000)


def _is_signed_in(client: Client) -> bool:
    return client.get("/").status_code == 200


@pytest.fixture
def alice_with_totp(alice: User) -> tuple[User, str]:
    set_fast_password(alice)
    secret = generate_totp_secret()
    TOTP.activate(alice, secret)
    return alice, secret


def test_enrolment_asks_for_the_password_first(client: Client, alice: User) -> None:
    set_fast_password(alice)
    client.force_login(alice)

    response = client.get(ACTIVATE)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/reauthenticate/")
    wrong = client.post("/accounts/reauthenticate/", {"password": "not-her-password", "next": ACTIVATE})
    assert wrong.status_code == 200
    assert "Incorrect password." in wrong.content.decode()
    assert client.get(ACTIVATE).status_code == 302


def test_member_enrols_an_authenticator_app(client: Client, alice: User) -> None:
    set_fast_password(alice)
    client.force_login(alice)
    assert "Protect your account with two-factor authentication" in client.get("/").content.decode()
    redirect = client.get(ACTIVATE)["Location"]

    confirmed = client.post(redirect, {"password": PASSWORD, "next": ACTIVATE})
    assert confirmed.status_code == 302
    assert confirmed["Location"] == ACTIVATE
    page = client.get(ACTIVATE)
    assert page.status_code == 200
    secret = client.session["mfa.totp.secret"]
    assert f'value="{secret}"' in page.content.decode()

    activated = client.post(ACTIVATE, {"code": _current_code(secret)})

    assert activated.status_code == 302
    assert activated["Location"] == "/accounts/2fa/recovery-codes/"
    assert user_has_mfa(user=alice)
    assert Authenticator.objects.filter(user=alice, type=Authenticator.Type.RECOVERY_CODES).exists()
    assert "Protect your account with two-factor authentication" not in client.get("/").content.decode()


def test_enrolment_refuses_a_wrong_code(client: Client, alice: User) -> None:
    set_fast_password(alice)
    client.force_login(alice)
    client.post("/accounts/reauthenticate/", {"password": PASSWORD, "next": ACTIVATE})
    client.get(ACTIVATE)
    secret = client.session["mfa.totp.secret"]

    response = client.post(ACTIVATE, {"code": _wrong_code(secret)})

    assert response.status_code == 200
    assert "Incorrect code." in response.content.decode()
    assert not user_has_mfa(user=alice)


def test_sign_in_with_totp_needs_the_code_after_the_password(
    client: Client, alice_with_totp: tuple[User, str]
) -> None:
    alice, secret = alice_with_totp

    response = client.post("/accounts/login/", {"login": alice.email, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == MFA_STEP
    assert not _is_signed_in(client)
    assert 'name="code"' in client.get(MFA_STEP).content.decode()

    response = client.post(MFA_STEP, {"code": _current_code(secret)})

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert _is_signed_in(client)


def test_sign_in_refuses_a_wrong_code(client: Client, alice_with_totp: tuple[User, str]) -> None:
    alice, secret = alice_with_totp
    client.post("/accounts/login/", {"login": alice.email, "password": PASSWORD})

    response = client.post(MFA_STEP, {"code": _wrong_code(secret)})

    assert response.status_code == 200
    assert "Incorrect code." in response.content.decode()
    assert not _is_signed_in(client)


def test_a_code_works_only_once(client: Client, alice_with_totp: tuple[User, str]) -> None:
    alice, secret = alice_with_totp
    code = _current_code(secret)
    client.post("/accounts/login/", {"login": alice.email, "password": PASSWORD})
    assert client.post(MFA_STEP, {"code": code})["Location"] == "/"
    client.post("/accounts/logout/")

    client.post("/accounts/login/", {"login": alice.email, "password": PASSWORD})
    response = client.post(MFA_STEP, {"code": code})

    assert response.status_code == 200
    assert not _is_signed_in(client)


def test_mfa_step_cannot_be_skipped(client: Client, alice_with_totp: tuple[User, str]) -> None:
    alice, _ = alice_with_totp
    client.post("/accounts/login/", {"login": alice.email, "password": PASSWORD})

    for path in ("/", "/profile/", "/accounts/2fa/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
