"""HR invites one new employee in the admin; she accepts the mailed link and works.

Hanna from HR fills in the admin's "Add invitation" form. The invitation mail
really goes out: this journey's daphne sends by SMTP (``EMAIL_HOST`` and
``EMAIL_PORT``, which settings read from the environment) to the aiosmtpd
``smtp_outbox`` of ``tests/mailservers.py``, and the test takes the link from
that mail, as the employee would. (The session's ``live_server_url`` prints mail
to its console, and the database keeps only a hash of the link's token.)

Nora opens the link in a browser of her own, chooses her name and a password and
lands on the home page signed in; she signs out and in again with the new
password. The link refuses a second use, and HR's list shows it accepted.
"""

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, Page, expect

from accounts import services
from accounts.models import Invitation, User
from tests.browser.conftest import DESKTOP, PHONE, watch_console
from tests.browser.test_chat_journey import person, sign_in
from tests.browser.test_offboarding_journey import archive_wiped_afterwards, hr_person  # noqa: F401 (fixture)
from tests.live import daphne

if TYPE_CHECKING:
    from tests.mailservers import SmtpOutbox

pytest_plugins = ["tests.mailservers"]

NEW_PASSWORD = "Harbour-Lantern-Quiet-4711"
INVITE_LINK = re.compile(r"http://127\.0\.0\.1:\d+/invite/[\w-]+/")


@pytest.fixture
def mailing_server_url(smtp_outbox: "SmtpOutbox", live_server_url: str) -> Iterator[str]:
    """A daphne of this journey's own, on the same test database, whose mail goes to
    ``smtp_outbox`` (asking for ``live_server_url`` first sets up the database and
    checks for Chromium)."""
    env = {
        "EMAIL_HOST": smtp_outbox.host,
        "EMAIL_PORT": str(smtp_outbox.port),
        "EMAIL_USE_TLS": "false",
        "EMAIL_USE_SSL": "false",
        "EMAIL_TIMEOUT": "10",
        "KONTOR_LOGIN_RATE_PER_MINUTE": "10000",
    }
    with daphne("live-server-invitations", extra_env=env) as url:
        yield url


def fits_the_width(page: Page) -> bool:
    """Nothing sticks out sideways (no horizontal scrolling)."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def wider_than_the_screen(page: Page) -> list[str]:
    """The elements that reach past the right edge, for the failure message."""
    found = page.evaluate(
        """() => [...document.querySelectorAll("body *")]
            .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
            .map((e) => `${e.tagName.toLowerCase()}.${e.className}: ${e.getBoundingClientRect().right}px`)"""
    )
    return [str(item) for item in found]


def test_hr_invites_a_new_employee_who_accepts_and_signs_in(
    browser: Browser,
    archive_wiped_afterwards: None,  # noqa: F811 (HR's role grant is an audit event, which no flush deletes)
    mailing_server_url: str,
    smtp_outbox: "SmtpOutbox",
    screenshot: Callable[..., Path],
) -> None:
    hanna = hr_person("Hanna Hofer")
    colleague = person("Anna Albers")  # already works here: Nora finds her in the directory
    department = services.department_ensure(name="Logistics")
    email = "nora.neu@kontor.example"

    # Hanna invites Nora from the admin's invitation list.
    hr_context = browser.new_context(base_url=mailing_server_url, viewport=DESKTOP)
    h = sign_in(hr_context, hanna)
    problems_hr = watch_console(h)
    h.goto("/admin/accounts/invitation/")
    h.get_by_role("link", name="Add invitation").click()
    expect(h).to_have_url(re.compile(r"/admin/accounts/invitation/add/$"))
    expect(h.locator("h1")).to_have_text("Invite someone")
    expect(h.locator("input[name=_continue]")).to_have_count(0)
    h.locator("#id_email").fill(email)
    h.locator("#id_display_name").fill("Nora Neu")
    h.locator("#id_job_title").fill("Dispatcher")
    h.locator("#id_department").select_option(label=department.name)
    screenshot(h, "invite-hr-form-desktop")
    h.locator("input[name=_save]").click()

    expect(h).to_have_url(re.compile(r"/admin/accounts/invitation/$"))
    expect(h.locator(".messagelist")).to_have_text(
        f"Invitation sent to {email}. The link works once and expires in 7 days."
    )
    row = h.locator("#result_list tbody tr", has_text=email)
    expect(row).to_have_count(1)
    expect(row.locator("td.field-state")).to_have_text("pending")
    expect(row.locator("td.field-invited_by")).to_have_text(str(hanna))

    # The mail reaches Nora's address, from Hanna, with a link to this server.
    (mail,) = smtp_outbox.wait_for(1, timeout=15)
    assert mail.rcpt_tos == [email]
    assert str(mail.message["Subject"]).startswith("You are invited to Kontor")
    plain = mail.message.get_body(preferencelist=("plain",))
    assert plain is not None
    text = plain.get_content()
    assert "Hello Nora Neu," in text
    assert "Hanna Hofer invites you" in text
    found = INVITE_LINK.search(text)
    assert found, text
    link = found.group(0)
    assert link.startswith(f"{mailing_server_url}/invite/")

    # Nora opens it in a browser of her own: who invited her, as whom, name filled in.
    nora_context = browser.new_context(base_url=mailing_server_url, viewport=DESKTOP)
    n = nora_context.new_page()
    problems_nora = watch_console(n)
    n.goto(link)
    expect(n).to_have_title(re.compile("Join Kontor"))
    expect(n.get_by_role("heading", level=1)).to_have_text("Join Kontor")
    expect(n.locator(".lead")).to_have_text(
        "Hanna Hofer invited you to Kontor's messenger. Choose your name and a password to start."
    )
    expect(n.get_by_label("Work email")).to_have_value(email)
    expect(n.get_by_label("Work email")).not_to_be_editable()
    expect(n.get_by_label("Your name")).to_have_value("Nora Neu")
    expect(n.get_by_role("button", name="Create my account")).to_be_visible()
    expect(n.get_by_text("This link works once and expires")).to_be_visible()
    screenshot(n, "invite-accept-desktop")
    n.set_viewport_size(PHONE)
    expect(n.get_by_role("button", name="Create my account")).to_be_visible()
    screenshot(n, "invite-accept-phone")
    assert fits_the_width(n), wider_than_the_screen(n)
    n.set_viewport_size(DESKTOP)

    # A typo in the repeated password is pointed out, and nothing happens yet.
    n.get_by_label("Your name").fill("Nora Neumann")
    n.get_by_label("Choose a password").fill(NEW_PASSWORD)
    n.get_by_label("Repeat the password").fill(NEW_PASSWORD + "!")
    n.get_by_role("button", name="Create my account").click()
    expect(n.get_by_role("alert")).to_have_text("The two passwords differ.")
    expect(n).to_have_url(link)

    n.get_by_label("Choose a password").fill(NEW_PASSWORD)
    n.get_by_label("Repeat the password").fill(NEW_PASSWORD)
    n.get_by_role("button", name="Create my account").click()

    # She is signed in: the home page greets her, with the sidebar and her name.
    expect(n).to_have_url(f"{mailing_server_url}/")
    expect(n.locator(".flash")).to_have_text("Welcome, Nora! Your account is ready.")
    expect(n.get_by_role("heading", name="Good to see you, Nora.")).to_be_visible()
    expect(n.get_by_role("navigation", name="Main").get_by_role("link", name="Home")).to_be_visible()
    expect(n.locator(".user-menu__name")).to_have_text("Nora Neumann")
    screenshot(n, "invite-welcome-home-desktop")

    # She signs out, and in again with her email and the password she chose.
    menu = n.locator("details.user-menu")
    menu.locator("summary").click()
    expect(menu.get_by_text(email)).to_be_visible()
    expect(menu.get_by_text("Dispatcher")).to_be_visible()
    menu.get_by_role("button", name="Sign out").click()
    expect(n).to_have_url(re.compile(r"/accounts/login/"))
    expect(n.get_by_role("status")).to_have_text("You have signed out.")
    expect(n.get_by_role("heading", name="Sign in")).to_be_visible()
    n.locator("#id_login").fill(email)
    n.locator("#id_password").fill(NEW_PASSWORD)
    n.get_by_role("button", name="Sign in").click()
    expect(n).to_have_url(f"{mailing_server_url}/")
    expect(n.get_by_role("heading", name="Good to see you, Nora.")).to_be_visible()
    expect(n.locator(".user-menu__name")).to_have_text("Nora Neumann")
    # The directory is open to her: she can write to a colleague.
    n.goto("/people/")
    expect(n.get_by_role("button", name=f"Message {colleague}")).to_be_visible()

    # The link works once: opened again (say, from the mail on her phone) it is refused.
    again_context = browser.new_context(base_url=mailing_server_url, viewport=PHONE)
    again = again_context.new_page()
    problems_again = watch_console(again)
    response = again.goto(link)
    assert response is not None and response.status == 404
    expect(again.get_by_role("heading", level=1)).to_have_text("This invitation link is not valid")
    expect(again.locator(".lead")).to_contain_text("It may have been used already")
    expect(again.get_by_role("link", name="Sign in")).to_be_visible()
    assert fits_the_width(again), wider_than_the_screen(again)
    # The refusal's own 404 (and Chromium's console line about it) is all the watcher saw there.
    assert f"HTTP 404: GET {link}" in problems_again
    assert [problem for problem in problems_again if link not in problem] == []

    # Hanna's list shows the invitation accepted, and Nora as an active employee.
    h.goto(f"/admin/accounts/invitation/?q={email}")
    expect(h.locator("#result_list tbody tr", has_text=email).locator("td.field-state")).to_have_text(
        "accepted"
    )
    h.goto(f"/admin/accounts/user/?q={email}")
    expect(h.locator("#result_list tbody tr", has_text=email).locator(".status--active")).to_have_text(
        "Active"
    )

    nora = User.objects.get(email=email)
    assert nora.display_name == "Nora Neumann" and nora.department == department
    assert Invitation.objects.get(user=nora).state == "accepted"
    assert len(smtp_outbox.messages) == 1  # accepting sent no further mail
    assert problems_hr == [] and problems_nora == []
    for context in (hr_context, nora_context, again_context):
        context.close()
