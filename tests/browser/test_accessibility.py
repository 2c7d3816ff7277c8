"""axe-core on the main pages: no violation of impact "serious" or "critical".

axe-core comes bundled with ``axe-playwright-python`` and is injected into the
page by Playwright (no script of ours, so the pages' CSP does not apply). Each
page is checked at desktop and at phone width, after the page has settled (the
chat's socket is up where there is one). Violations are printed one a line:
rule, impact, the element's selector and its HTML.

A page whose violation is known and not yet fixed is marked
``xfail(strict=True)`` naming the rule, so the suite says when it is fixed.
"""

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect

from accounts import roles
from accounts.models import User
from messenger import services as chat
from tests.browser.conftest import DESKTOP, PHONE, watch_console
from tests.browser.test_chat_journey import person, sign_in
from tests.browser.test_login_journey import MFA_PATH, TotpUser
from tests.browser.test_offboarding_journey import off_the_loop
from tests.factories import PASSWORD, make_user
from tests.guards import ensure_retention_policies, flush_guarded_database

AXE = Axe()
BLOCKING = {"serious", "critical"}


class KnownViolations(AssertionError):
    """Only violations listed as known (and not fixed yet) were found. None are
    listed now; a page that gets one is marked ``xfail(strict=True,
    raises=KnownViolations)`` naming the rule and element."""


@dataclass(frozen=True)
class Violation:
    rule: str
    target: str
    text: str

    @property
    def key(self) -> str:
        return f"{self.rule} {self.target}"


def violations(page: Page) -> list[Violation]:
    """The page's serious and critical axe violations, one per element."""
    results: dict[str, Any] = AXE.run(page).response
    found = []
    for violation in results["violations"]:
        for node in violation["nodes"]:
            impact = node.get("impact") or violation.get("impact")
            if impact not in BLOCKING:
                continue
            target = " ".join(str(part) for part in node["target"])
            html = re.sub(r"\s+", " ", node["html"])[:200]
            summary = re.sub(r"\s+", " ", node.get("failureSummary") or "")
            found.append(
                Violation(
                    rule=violation["id"],
                    target=target,
                    text=f"{violation['id']} [{impact}] {target}: {html} — {violation['help']}. {summary}",
                )
            )
    return found


@dataclass
class Workspace:
    anna: User
    ben: User
    dm: int
    channel: int


@pytest.fixture
def workspace(browser_db: None) -> Workspace:
    anna, ben = person("Anna Albers"), person("Ben Berger")

    def conversations() -> tuple[int, int]:
        dm = chat.direct_open(actor=anna, other_user_id=ben.pk)
        chat.message_send(actor=ben, conversation_id=dm.pk, body="Das Angebot für **Nordhafen** ist raus.")
        chat.message_send(
            actor=anna, conversation_id=dm.pk, body=f"Danke @{ben.handle}, ich schaue es mir an."
        )
        channel = chat.channel_create(
            actor=anna,
            name=f"nordhafen-{uuid.uuid4().hex[:4]}",
            topic="Projekt Nordhafen",
            member_ids=[ben.pk],
        )
        chat.message_send(actor=ben, conversation_id=channel.pk, body="Die Pläne liegen im Ordner.")
        return dm.pk, channel.pk

    dm, channel = off_the_loop(conversations)
    return Workspace(anna=anna, ben=ben, dm=dm, channel=channel)


def check(
    page: Page, screenshot: Callable[..., Path], name: str, known: frozenset[str] = frozenset()
) -> None:
    """axe at desktop and phone width; screenshots of both; fail with the list.

    Violations in ``known`` (``"rule selector"``) raise ``KnownViolations``
    instead, which only the matching ``xfail`` expects; any other fails."""
    found: list[tuple[str, Violation]] = []
    for size, width in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        screenshot(page, f"a11y-{name}-{width}")
        found += [(width, violation) for violation in violations(page)]
    page.set_viewport_size(DESKTOP)
    report = "\n".join(f"{width}: {violation.text}" for width, violation in found)
    unknown = [violation for _, violation in found if violation.key not in known]
    assert not unknown, f"axe found {len(found)} serious/critical violation(s) on {name}:\n{report}"
    if found:
        raise KnownViolations(f"known violation(s) on {name}, not fixed yet:\n{report}")


def signed_in(browser: Browser, live_server_url: str, user: User) -> tuple[BrowserContext, Page]:
    context = browser.new_context(base_url=live_server_url, viewport=DESKTOP)
    return context, sign_in(context, user)


def test_sign_in_page(
    browser: Browser, browser_db: None, live_server_url: str, screenshot: Callable[..., Path]
) -> None:
    context = browser.new_context(base_url=live_server_url, viewport=DESKTOP)
    page = context.new_page()
    problems = watch_console(page)
    page.goto("/accounts/login/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    check(page, screenshot, "sign-in")
    assert problems == []
    context.close()


# The signed-in app's pages: (name, path built from the workspace, what shows when it is ready).
SIGNED_IN_PAGES = [
    ("home", "/", "main h2"),
    ("conversation", "/c/{dm}/", "article.msg"),
    ("channel", "/c/{channel}/", "article.msg"),
    ("conversation-settings", "/c/{channel}/settings/", ".member-list"),
    ("conversation-files", "/c/{channel}/files/", "main"),
    ("people", "/people/", "main"),
    ("channels", "/channels/", ".channel-row"),
    ("search", "/search/?q=Nordhafen", "main"),
    ("profile", "/profile/", "main form"),
]
APP_PAGES = [pytest.param(name, path, ready, frozenset(), id=name) for name, path, ready in SIGNED_IN_PAGES]


@pytest.mark.parametrize(("name", "path", "ready", "known"), APP_PAGES)
def test_app_page(
    name: str,
    path: str,
    ready: str,
    known: frozenset[str],
    browser: Browser,
    workspace: Workspace,
    live_server_url: str,
    screenshot: Callable[..., Path],
) -> None:
    context, page = signed_in(browser, live_server_url, workspace.anna)
    problems = watch_console(page)
    page.goto(path.format(dm=workspace.dm, channel=workspace.channel))
    expect(page.locator(ready).first).to_be_visible()
    assert problems == []
    try:
        check(page, screenshot, name, known)
    finally:
        context.close()


# --- The auditors' workspace ----------------------------------------------------


@pytest.fixture
def auditor(browser_db: None) -> TotpUser:
    """An auditor with an authenticator app (the workspace refuses auditors without one).

    Opening the workspace writes audit records, which the database refuses to
    flush: the database is emptied with the guards lifted afterwards (as the
    offboarding journey does)."""
    ensure_retention_policies()
    user = make_user(
        email=f"otto.{uuid.uuid4().hex[:8]}@kontor.example",
        display_name="Otto Ordnung",
        roles=[roles.AUDITORS],
    )
    secret = generate_totp_secret()
    return TotpUser(user=user, totp=TOTP.activate(user, secret), secret=secret)


@pytest.fixture
def auditor_wiped_afterwards(auditor: TotpUser) -> Any:
    yield auditor
    flush_guarded_database()


AUDITOR_PAGES = [
    ("compliance-cases", "/compliance/"),
    ("compliance-case-open", "/compliance/cases/new/"),
    ("compliance-holds", "/compliance/holds/"),
    ("compliance-audit-trail", "/compliance/audit/"),
]


@pytest.mark.parametrize(("name", "path"), AUDITOR_PAGES, ids=[name for name, _ in AUDITOR_PAGES])
def test_auditor_page(
    name: str,
    path: str,
    browser: Browser,
    auditor_wiped_afterwards: TotpUser,
    live_server_url: str,
    screenshot: Callable[..., Path],
) -> None:
    otto = auditor_wiped_afterwards
    context = browser.new_context(base_url=live_server_url, viewport=DESKTOP)
    page = context.new_page()
    problems = watch_console(page)
    page.goto("/accounts/login/")
    page.locator("#id_login").fill(otto.user.email)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(re.escape(MFA_PATH)))
    page.locator("input[name=code]").fill(otto.current_code())
    page.get_by_role("button", name="Verify and sign in").click()
    expect(page).to_have_url(re.compile(r"/$"))
    page.goto(path)
    expect(page.locator("main")).to_be_visible()
    assert problems == []
    try:
        check(page, screenshot, name)
    finally:
        context.close()
