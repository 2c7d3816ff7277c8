"""Sign-in throttling stops attackers, not colleagues (issue 16, item 8).

These tests run with a real cache (LocMem, a fresh one per test) and the rate
limits of ``config.settings``, so allauth's throttling is really on: with a
DummyCache it would silently be off.
"""

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest
from django.test import Client
from pytest_django import Settings

from accounts.models import User
from tests.accounts.helpers import set_fast_password
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
LOGIN = "/accounts/login/"
MFA_STEP = "/accounts/2fa/authenticate/"
OFFICE = "198.51.100.7"  # the company's NAT address
ATTACKER = "203.0.113.9"
THROTTLED = "Too many failed login attempts"
WRONG = "The email address and/or password you specified are not correct."


@pytest.fixture(autouse=True)
def rate_limited(settings: Settings) -> None:
    """A real, empty cache of this test's own; the project's rate limits."""
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"throttle-{uuid.uuid4().hex}",
        },
    }
    assert settings.ACCOUNT_RATE_LIMITS, "rate limiting must be on for these tests"


def _from(address: str) -> Client:
    return Client(REMOTE_ADDR=address)


def _sign_in(client: Client, email: str, password: str = PASSWORD) -> Any:
    return client.post(LOGIN, {"login": email, "password": password})


def _signed_in(client: Client) -> bool:
    return client.get("/").status_code == 200


def _throttled(response: Any) -> bool:
    return response.status_code == 429 or THROTTLED in response.content.decode()


def _colleagues(count: int) -> list[User]:
    return [set_fast_password(make_user(email=f"colleague{n}@kontor.example")) for n in range(count)]


# While one colleague's password is being checked, the next one's sign-in arrives:
# thirty people pressing "Sign in" at nine, deterministically, in one thread.
_ARRIVING: list[Callable[[], None]] = []


class SimultaneousBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if _ARRIVING:
            _ARRIVING.pop(0)()
        return super().authenticate(request, username=username, password=password, **kwargs)


def test_thirty_colleagues_behind_one_address_sign_in_at_the_same_moment(settings: Settings) -> None:
    settings.AUTHENTICATION_BACKENDS = [
        f"{__name__}.SimultaneousBackend",
        "allauth.account.auth_backends.AuthenticationBackend",
    ]
    people = _colleagues(30)
    clients = [_from(OFFICE) for _ in people]
    responses: dict[str, Any] = {}

    def arrive(client: Client, person: User) -> Callable[[], None]:
        return lambda: responses.__setitem__(person.email, _sign_in(client, person.email))

    _ARRIVING[:] = [arrive(c, p) for c, p in zip(clients[1:], people[1:], strict=True)]
    depth = sys.getrecursionlimit()
    sys.setrecursionlimit(max(depth, 20_000))  # thirty requests nested in one another
    try:
        responses[people[0].email] = _sign_in(clients[0], people[0].email)
        while _ARRIVING:  # a refusal before the password check ends the nesting
            _ARRIVING.pop(0)()
    finally:
        _ARRIVING.clear()
        sys.setrecursionlimit(depth)

    refused = [email for email, r in responses.items() if r.status_code != 302]
    assert len(responses) == 30
    assert refused == []
    assert all(_signed_in(client) for client in clients)


def test_thirty_colleagues_sign_in_one_after_another_within_a_minute() -> None:
    people = _colleagues(30)
    started = time.monotonic()

    responses = [_sign_in(_from(OFFICE), person.email) for person in people]

    assert time.monotonic() - started < 60
    assert [r.status_code for r in responses] == [302] * 30


def test_thirty_wrong_passwords_from_one_address_are_throttled() -> None:
    people = _colleagues(10)
    attacker = _from(ATTACKER)

    responses = [_sign_in(attacker, people[n % 10].email, f"guess-{n}") for n in range(30)]

    # Ten failures per address and minute are answered; after that the address waits.
    assert [WRONG in r.content.decode() for r in responses[:10]] == [True] * 10
    assert [_throttled(r) for r in responses[10:]] == [True] * 20
    # Throttled means the password is not even tried: the right one fails too.
    assert _throttled(_sign_in(attacker, people[0].email))
    assert not _signed_in(attacker)
    # Colleagues at the office are not affected.
    assert _sign_in(_from(OFFICE), people[0].email).status_code == 302


def test_five_wrong_passwords_lock_that_account_for_that_address_only(alice: User, bob: User) -> None:
    set_fast_password(alice)
    set_fast_password(bob)
    attacker = _from(ATTACKER)

    first = [_sign_in(attacker, alice.email, f"guess-{n}") for n in range(5)]
    sixth = _sign_in(attacker, alice.email, "guess-5")

    assert all(WRONG in r.content.decode() for r in first)
    assert _throttled(sixth)
    assert _throttled(_sign_in(attacker, alice.email))  # the right password is not tried
    # The address may still get other accounts wrong until its own limit ...
    assert WRONG in _sign_in(attacker, bob.email, "guess").content.decode()
    # ... and alice herself, at her desk, is not locked out.
    assert _sign_in(_from(OFFICE), alice.email).status_code == 302


def _current_code(secret: str) -> str:
    if time.time() % 30 > 28:
        time.sleep(2.1)
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def test_the_owner_gets_in_with_password_and_code_while_an_attacker_elsewhere_is_throttled(
    alice: User,
) -> None:
    set_fast_password(alice)
    secret = generate_totp_secret()
    TOTP.activate(alice, secret)
    attacker = _from(ATTACKER)

    guesses = [_sign_in(attacker, alice.email, f"guess-{n}") for n in range(30)]
    assert _throttled(guesses[-1])
    assert sum(_throttled(r) for r in guesses) == 25

    owner = _from(OFFICE)
    response = _sign_in(owner, alice.email)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == MFA_STEP
    response = owner.post(MFA_STEP, {"code": _current_code(secret)})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert _signed_in(owner)

    # The owner's success does not let the attacker go on guessing.
    assert _throttled(_sign_in(attacker, alice.email, "guess-31"))
    assert not _signed_in(attacker)


DUMP = "import json, config.settings as s; print(json.dumps({k: getattr(s, k, None) for k in %r}))"


def _settings_with(tmp_path: Path, **env: str) -> dict[str, Any]:
    """``config.settings`` loaded in a fresh interpreter with this environment."""
    names = ["ACCOUNT_RATE_LIMITS", "ALLAUTH_TRUSTED_PROXY_COUNT"]
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "KONTOR_DATA_DIR": str(tmp_path / "data"),
        **env,
    }
    result = subprocess.run(
        [sys.executable, "-c", DUMP % names],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def test_the_documented_settings_set_the_limits_that_apply(tmp_path: Path) -> None:
    default = _settings_with(tmp_path)
    assert default["ACCOUNT_RATE_LIMITS"] == {"login": "30/m/ip", "login_failed": "10/m/ip,5/5m/key"}
    assert default["ALLAUTH_TRUSTED_PROXY_COUNT"] is None

    office = _settings_with(
        tmp_path,
        KONTOR_LOGIN_RATE_PER_MINUTE="200",
        KONTOR_LOGIN_FAILURES_PER_MINUTE="40",
        KONTOR_LOGIN_ACCOUNT_FAILURES="8",
        KONTOR_BEHIND_PROXY="true",
    )
    assert office["ACCOUNT_RATE_LIMITS"] == {"login": "200/m/ip", "login_failed": "40/m/ip,8/5m/key"}
    # Behind the proxy the client's address counts, not the proxy's.
    assert office["ALLAUTH_TRUSTED_PROXY_COUNT"] == 1
