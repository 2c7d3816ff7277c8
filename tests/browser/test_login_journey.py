"""Signing in with email, password and an authenticator code, and signing out."""

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.core.cache import cache
from playwright.sync_api import Page, expect

from accounts.models import User
from tests.browser.conftest import DESKTOP, PHONE
from tests.factories import PASSWORD, make_user

LOGIN_PATH = "/accounts/login/"
MFA_PATH = "/accounts/2fa/authenticate/"


@dataclass
class TotpUser:
    user: User
    totp: TOTP
    secret: str

    def current_code(self) -> str:
        """The authenticator code for now, never one about to expire.

        allauth accepts only the current window (30 s) and remembers a used
        code in the cache (Redis outlives a run; user ids restart with the test
        database), so the code is taken early in a window and forgotten first:
        with 10 s left at least, as typing it in a loaded browser takes seconds.
        """
        period = mfa_settings.TOTP_PERIOD
        if period - time.time() % period < 10:
            time.sleep(period - time.time() % period + 0.1)
        code = format_hotp_value(hotp_value(self.secret, int(time.time()) // period))
        cache.delete(self.totp._get_used_cache_key(code))
        return code


def unique_email(name: str) -> str:
    """A fresh address per run: allauth's failed-login limit is kept per address in Redis."""
    return f"{name}.{uuid.uuid4().hex[:8]}@kontor.example"


@pytest.fixture
def tina(browser_db: None) -> TotpUser:
    user = make_user(email=unique_email("tina"), display_name="Tina Tallinn", job_title="Buyer")
    secret = generate_totp_secret()
    return TotpUser(user=user, totp=TOTP.activate(user, secret), secret=secret)


def test_sign_in_with_authenticator_code_and_sign_out(
    page: Page,
    tina: TotpUser,
    console_errors: list[str],
    screenshot: Callable[..., Path],
) -> None:
    page.goto(LOGIN_PATH)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    screenshot(page, "login-desktop")
    page.set_viewport_size(PHONE)
    screenshot(page, "login-phone")
    page.set_viewport_size(DESKTOP)

    page.locator("#id_login").fill(tina.user.email)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("button[type=submit]").click()

    expect(page).to_have_url(re.compile(re.escape(MFA_PATH)))
    code_input = page.locator("input[name=code]")
    expect(code_input).to_be_visible()
    screenshot(page, "mfa-desktop")
    code_input.fill(tina.current_code())
    page.get_by_role("button", name="Verify and sign in").click()

    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", name="Good to see you, Tina.")).to_be_visible()
    # Two-factor authentication is on, so the home page does not nag about it.
    expect(page.get_by_text("Protect your account with two-factor authentication.")).to_have_count(0)
    screenshot(page, "home-desktop")
    page.set_viewport_size(PHONE)
    expect(page.get_by_role("heading", name="Good to see you, Tina.")).to_be_visible()
    screenshot(page, "home-phone")
    # On a phone the sidebar is a drawer behind the menu button.
    open_nav = page.get_by_role("button", name="Open navigation")
    open_nav.click()
    expect(open_nav).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="My profile")).to_be_visible()
    screenshot(page, "home-phone-navigation", full_page=False)
    page.keyboard.press("Escape")
    expect(open_nav).to_have_attribute("aria-expanded", "false")
    page.set_viewport_size(DESKTOP)

    menu = page.locator("details.user-menu")
    menu.locator("summary").click()
    expect(menu).to_have_attribute("open", "")
    sign_out = menu.get_by_role("button", name="Sign out")
    expect(sign_out).to_be_visible()
    expect(menu.get_by_text(tina.user.email)).to_be_visible()
    screenshot(page, "user-menu-desktop", full_page=False)
    sign_out.click()
    page.wait_for_load_state()

    page.goto("/")
    expect(page).to_have_url(re.compile(re.escape(LOGIN_PATH)))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    assert not console_errors, "\n".join(console_errors)


def test_wrong_password_shows_the_error_and_stays_signed_out(
    page: Page,
    browser_db: None,
    console_errors: list[str],
    screenshot: Callable[..., Path],
) -> None:
    user = make_user(email=unique_email("walter"), display_name="Walter Wrong")

    page.goto(LOGIN_PATH)
    page.locator("#id_login").fill(user.email)
    page.locator("#id_password").fill("not-the-password-at-all")
    page.locator("button[type=submit]").click()

    expect(page).to_have_url(re.compile(re.escape(LOGIN_PATH)))
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The email address and/or password you specified are not correct.")
    # The address stays filled in, the password does not.
    expect(page.locator("#id_login")).to_have_value(user.email)
    expect(page.locator("#id_password")).to_have_value("")
    screenshot(page, "login-error-desktop")

    page.goto("/")
    expect(page).to_have_url(re.compile(re.escape(LOGIN_PATH)))
    assert not console_errors, "\n".join(console_errors)
