"""Two people chat live, each in their own browser context."""

import re
import uuid
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, expect

from accounts.models import User
from tests.browser.conftest import DESKTOP, watch_console
from tests.factories import PASSWORD, make_user


def sign_in(context: BrowserContext, user: User) -> Page:
    page = context.new_page()
    page.goto("/accounts/login/")
    page.locator("#id_login").fill(user.email)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    # The home page, not the sign-in page again (which ends in "/" too).
    expect(page).to_have_url(re.compile(r"://[^/]+/$"))
    return page


def person(name: str) -> User:
    local = name.split()[0].lower()
    return make_user(email=f"{local}.{uuid.uuid4().hex[:6]}@kontor.example", display_name=name)


def test_a_direct_message_arrives_live_with_typing_and_reactions(
    browser: Browser, browser_db: None, live_server_url: str, screenshot: Callable[..., Path]
) -> None:
    anna, ben = person("Anna Albers"), person("Ben Berger")
    contexts = [browser.new_context(base_url=live_server_url, viewport=DESKTOP) for _ in range(2)]
    a, b = (sign_in(context, user) for context, user in zip(contexts, (anna, ben), strict=True))
    problems_a, problems_b = watch_console(a), watch_console(b)

    # Anna finds Ben in the directory and writes to him.
    a.goto("/people/")
    a.get_by_role("button", name=f"Message {ben}").click()
    expect(a).to_have_url(re.compile(r"/c/\d+/$"))
    a.locator("#composer-body").fill("Hallo Ben, das Angebot für Nordhafen ist raus.")
    a.locator("#composer-body").press("Enter")
    expect(a.locator(".msg__body", has_text="das Angebot für Nordhafen ist raus")).to_have_count(1)

    # Ben, on his home page, sees the conversation appear with an unread badge.
    conversation = b.locator('[data-sidebar] a[data-kind="direct"]', has_text=str(anna))
    expect(conversation).to_be_visible()
    expect(conversation.locator("[data-mentions]")).to_be_visible()
    conversation.click()
    expect(b.locator(".msg__body", has_text="das Angebot für Nordhafen ist raus")).to_have_count(1)

    # Ben types: Anna sees it, then his reply.
    b.locator("#composer-body").press_sequentially("Danke, ich schaue es mir an")
    expect(a.locator("[data-typing]")).to_contain_text(str(ben.get_short_name()))
    b.locator("#composer-body").press("Enter")
    reply = a.locator("article.msg", has_text="Danke, ich schaue es mir an")
    expect(reply).to_have_count(1)

    # Anna reacts; Ben sees the reaction on his message.
    reply.hover()
    reply.get_by_title("Add a reaction").click()
    reply.get_by_role("button", name="👍").click()
    expect(
        b.locator("article.msg", has_text="Danke, ich schaue es mir an").locator(".reaction", has_text="👍")
    ).to_be_visible()
    screenshot(a, "chat-direct-anna-desktop", full_page=False)
    screenshot(b, "chat-direct-ben-desktop", full_page=False)

    # Each message is shown exactly once on both sides.
    for page in (a, b):
        expect(page.locator("article.msg")).to_have_count(2)
    assert problems_a + problems_b == []
    for context in contexts:
        context.close()
