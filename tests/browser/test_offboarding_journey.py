"""HR offboards someone in the admin while that person has the chat open.

Three browser contexts: Ben (the leaver) and Anna (his department head) have
their direct conversation open; Hanna from HR offboards Ben. Ben's window is
signed out by itself, Anna sees "(left the company)" and that the conversation
takes no more messages; Hanna lands on the report.
"""

import re
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connections
from playwright.sync_api import Browser, BrowserContext, Page, expect

from accounts import roles, services
from accounts.models import User
from hr.models import OffboardingReport
from messenger import services as chat
from messenger.models import Conversation
from tests.browser.conftest import DESKTOP, PHONE, watch_console
from tests.browser.test_chat_journey import person
from tests.factories import PASSWORD
from tests.guards import ensure_retention_policies, flush_guarded_database

T = TypeVar("T")


@pytest.fixture
def archive_wiped_afterwards(browser_db: None) -> Iterator[None]:
    """The offboarding commits records, audit events and a report, which the
    database refuses to flush: empty it with the guards lifted (set up after
    the database, so this runs before pytest-django's own flush). An earlier
    flush took the retention policies the snapshots need: they come back first."""
    ensure_retention_policies()
    yield
    flush_guarded_database()


def hr_person(name: str) -> User:
    """Someone in HR, no superuser. A flushed test database lost the group's
    permissions (the migration made them), so they are granted again here."""
    hr = Group.objects.get_or_create(name=roles.HR)[0]
    for app_label, codename in roles.HR_PERMISSIONS:
        hr.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    user = person(name)
    services.user_roles_set(actor=None, user=user, roles=[roles.HR])
    return user


def off_the_loop(work: Callable[[], T]) -> T:
    """Run ``work`` in a thread of its own: chat services broadcast on commit
    through ``async_to_sync``, which cannot run in the thread where
    Playwright's event loop is running."""

    def run() -> T:
        try:
            return work()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def sign_in(context: BrowserContext, user: User) -> Page:
    page = context.new_page()
    page.goto("/accounts/login/")
    page.locator("#id_login").fill(user.email)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/$"))
    return page


def test_hr_offboards_someone_who_has_the_chat_open_and_they_are_signed_out(
    browser: Browser, archive_wiped_afterwards: None, live_server_url: str, screenshot: Callable[..., Path]
) -> None:
    anna, ben = person("Anna Albers"), person("Ben Berger")
    hanna = hr_person("Hanna Hofer")
    assert not hanna.is_superuser
    sales = services.department_ensure(name="Sales")
    services.department_set_head(department=sales, head=anna)
    services.user_update(user=ben, fields={"department": sales, "job_title": "Key Account Manager"})

    def conversations() -> tuple[Conversation, Conversation]:
        dm = chat.direct_open(actor=anna, other_user_id=ben.pk)
        chat.message_send(actor=ben, conversation_id=dm.pk, body="Das Angebot für Nordhafen ist raus.")
        channel = chat.channel_create(actor=ben, name="nordhafen", member_ids=[anna.pk])
        return dm, channel

    dm, channel = off_the_loop(conversations)

    contexts = [browser.new_context(base_url=live_server_url, viewport=DESKTOP) for _ in range(3)]
    b, a, h = (sign_in(c, u) for c, u in zip(contexts, (ben, anna, hanna), strict=True))
    problems = {"ben": watch_console(b), "anna": watch_console(a), "hanna": watch_console(h)}

    # Ben and Anna have their conversation open; the socket is up once Anna's typing reaches Ben.
    for page in (a, b):
        page.goto(f"/c/{dm.pk}/")
        expect(page.locator(".msg__body", has_text="Das Angebot für Nordhafen ist raus.")).to_have_count(1)
    a.locator("#composer-body").press_sequentially("Danke")
    expect(b.locator("[data-typing]")).to_contain_text("Anna")
    a.locator("#composer-body").fill("")

    # Hanna finds Ben in the people list and picks the Offboard action.
    h.goto("/admin/accounts/user/")
    h.locator("#searchbar").fill(ben.email)
    h.locator("#searchbar").press("Enter")
    row = h.locator("#result_list tbody tr", has_text=ben.email)
    expect(row).to_have_count(1)
    expect(row.locator(".status--active")).to_have_text("Active")
    row.locator("input.action-select").check()
    h.locator("select[name=action]").select_option("offboard_selected")
    h.locator("button[name=index]").click()

    # The confirmation page suggests Anna, the head of his department.
    expect(h.locator("h1")).to_have_text("Offboard Ben Berger")
    successor = h.locator(f"#id_u{ben.pk}-successor")
    expect(successor).to_have_value(str(anna.pk))
    expect(h.locator("[data-leaver]")).to_contain_text(f"#{channel.name}")
    h.locator("#id_hold").check()
    h.locator("#id_hold_reason").fill("Arbeitsgerichtsverfahren 3 Ca 118/26")
    screenshot(h, "offboarding-confirm-hanna-desktop")
    h.set_viewport_size(PHONE)
    expect(h.get_by_role("button", name="Offboard Ben Berger")).to_be_visible()
    screenshot(h, "offboarding-confirm-hanna-phone")
    h.set_viewport_size(DESKTOP)
    h.get_by_role("button", name="Offboard Ben Berger").click()

    # Ben's open chat signs him out by itself.
    expect(b).to_have_url(re.compile(r"/accounts/login/"))
    expect(b.locator("#id_login")).to_be_visible()
    screenshot(b, "offboarding-ben-signed-out-desktop", full_page=False)
    b.goto(f"/c/{dm.pk}/")
    expect(b).to_have_url(re.compile(r"/accounts/login/"))

    # Hanna lands on the report.
    expect(h).to_have_url(re.compile(r"/admin/hr/offboardingreport/\d+/change/$"))
    report = OffboardingReport.objects.get(user=ben)
    expect(h.locator("[data-count=conversations]")).to_have_text("2")
    expect(h.locator("[data-count=messages]")).to_have_text("1")
    expect(h.locator("[data-successor]")).to_contain_text("Anna Albers")
    expect(h.locator("[data-hold]")).to_contain_text("3 Ca 118/26")
    expect(h.locator("[data-hash]")).to_contain_text("matches its content")
    screenshot(h, "offboarding-report-hanna-desktop")
    h.set_viewport_size(PHONE)
    expect(h.locator("[data-hash]")).to_be_visible()
    screenshot(h, "offboarding-report-hanna-phone")
    h.set_viewport_size(DESKTOP)
    pdf = h.request.get(f"/admin/hr/offboardingreport/{report.pk}/pdf/")
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")

    # Anna's open conversation shows that Ben left and takes no more messages.
    expect(a.locator(".composer--closed")).to_contain_text("has left the company and cannot receive messages")
    expect(a.locator(".msg__author", has_text="Ben Berger")).to_contain_text("(left the company)")
    expect(a.locator("[data-conversation-title]")).to_have_text("Ben Berger (left the company)")
    expect(a.locator(".msg__body", has_text="Das Angebot für Nordhafen ist raus.")).to_have_count(1)
    screenshot(a, "offboarding-anna-direct-desktop", full_page=False)
    a.goto(f"/c/{channel.pk}/settings/")
    expect(a.locator("[data-former-members]")).to_contain_text("Ben Berger (left the company)")
    expect(a.locator(".member-list").first.locator(".badge", has_text="Owner")).to_have_count(1)
    screenshot(a, "offboarding-anna-channel-members-desktop")

    # In the people list he is offboarded now.
    h.goto(f"/admin/accounts/user/?q={ben.email}")
    expect(
        h.locator("#result_list tbody tr", has_text=ben.email).locator(".status--offboarded")
    ).to_have_text("Offboarded")
    screenshot(h, "offboarding-people-list-hanna-desktop", full_page=False)

    assert problems == {"ben": [], "anna": [], "hanna": []}
    for context in contexts:
        context.close()


def test_hr_invites_several_people_from_a_csv_after_a_preview(
    browser: Browser,
    archive_wiped_afterwards: None,  # HR's role grant is an audit event, which no flush deletes
    live_server_url: str,
    screenshot: Callable[..., Path],
    tmp_path: Path,
) -> None:
    hanna = hr_person("Hanna Hofer")
    department = services.department_ensure(name=f"Finance {uuid.uuid4().hex[:4]}")
    taken = person("Olga Obst")
    suffix = uuid.uuid4().hex[:6]
    csv = tmp_path / "people.csv"
    csv.write_text(
        "email;name;job_title;department\n"
        f"jan.roth.{suffix}@kontor.example;Jan Roth;Accountant;{department.name}\n"
        f"{taken.email};Olga Obst;;\n"
        f"lea.lang.{suffix}@kontor.example;Lea Lang;Controller;Marketing\n"
        f"mia.moll.{suffix}@kontor.example;Mia Möll;Buchhaltung;{department.name}\n"
    )
    context = browser.new_context(base_url=live_server_url, viewport=DESKTOP)
    page = sign_in(context, hanna)
    problems = watch_console(page)

    page.goto("/admin/accounts/invitation/")
    page.get_by_role("link", name="Invite several (CSV)").click()
    page.locator("#id_file").set_input_files(str(csv))
    page.get_by_role("button", name="Check the file").click()

    expect(page.locator("[data-preview] h2")).to_have_text("Preview: 2 of 4 ready to invite")
    expect(page.locator("tr[data-line='3']")).to_contain_text("This person already has an account.")
    expect(page.locator("tr[data-line='4']")).to_contain_text("There is no department “Marketing”.")
    screenshot(page, "bulk-invite-preview-hanna-desktop")
    page.get_by_role("button", name="Send 2 invitations").click()

    expect(page).to_have_url(re.compile(r"/admin/accounts/invitation/$"))
    expect(page.locator(".messagelist")).to_contain_text("Sent 2 invitation(s).")
    expect(page.locator(".messagelist")).to_contain_text("2 line(s) with errors were left out.")
    expect(page.locator("#result_list")).to_contain_text(f"mia.moll.{suffix}@kontor.example")
    assert problems == []
    context.close()
