"""Journey 1: two people chat live, each in their own browser context.

Anna signs in with her password and authenticator code, starts a direct
conversation with Ben and writes; Ben sees it appear with an unread badge and
replies while Anna watches him type; reactions, an edit and a deletion show up
on the other side without a reload.
"""

import re
from collections.abc import Callable
from pathlib import Path

from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from playwright.sync_api import Browser, BrowserContext, Dialog, Page, expect

from accounts.models import User
from tests.browser.conftest import DESKTOP, watch_console
from tests.browser.test_login_journey import MFA_PATH, TotpUser
from tests.factories import PASSWORD, make_user

HOME = re.compile(r"://[^/]+/$")


def sign_in(context: BrowserContext, user: User) -> Page:
    page = context.new_page()
    page.goto("/accounts/login/")
    page.locator("#id_login").fill(user.email)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    # The home page, not the sign-in page again (which ends in "/" too).
    expect(page).to_have_url(HOME)
    return page


def person(name: str) -> User:
    """Someone at the company: ``Anna Albers`` is anna.albers@kontor.example (the
    database is flushed after each browser test, and the screenshots read clean)."""
    return make_user(email=f"{name.lower().replace(' ', '.')}@kontor.example", display_name=name)


def test_a_direct_message_arrives_live_with_typing_reactions_edits_and_deletions(
    browser: Browser, browser_db: None, live_server_url: str, screenshot: Callable[..., Path]
) -> None:
    anna, ben = person("Anna Albers"), person("Ben Berger")
    secret = generate_totp_secret()
    anna_totp = TotpUser(user=anna, totp=TOTP.activate(anna, secret), secret=secret)
    contexts = [browser.new_context(base_url=live_server_url, viewport=DESKTOP) for _ in range(2)]

    # Anna signs in with her authenticator app.
    a = contexts[0].new_page()
    problems_a = watch_console(a)
    a.goto("/accounts/login/")
    a.locator("#id_login").fill(anna.email)
    a.locator("#id_password").fill(PASSWORD)
    a.locator("button[type=submit]").click()
    expect(a).to_have_url(re.compile(re.escape(MFA_PATH)))
    a.locator("input[name=code]").fill(anna_totp.current_code())
    a.get_by_role("button", name="Verify and sign in").click()
    expect(a).to_have_url(HOME)
    b = sign_in(contexts[1], ben)
    problems_b = watch_console(b)

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

    # Ben types once his page is connected: Anna sees it, then his reply.
    expect(b.locator("[data-app]")).to_have_attribute("data-socket", "open")
    b.locator("#composer-body").press_sequentially("Danke, ich schaue es mir an")
    expect(a.locator("[data-typing]")).to_contain_text(str(ben.get_short_name()))
    b.locator("#composer-body").press("Enter")
    reply = a.locator("article.msg", has_text="Danke, ich schaue es mir an")
    expect(reply).to_have_count(1)
    expect(a.locator("[data-typing]")).not_to_contain_text(str(ben.get_short_name()))

    # Anna reacts; Ben sees the reaction on his message.
    reply.hover()
    reply.get_by_title("Add a reaction").click()
    reply.get_by_role("button", name="👍").click()
    expect(
        b.locator("article.msg", has_text="Danke, ich schaue es mir an").locator(".reaction", has_text="👍")
    ).to_be_visible()

    # Anna corrects her first message; Ben sees the new text, marked edited.
    first = a.locator("article.msg", has_text="das Angebot für Nordhafen ist raus")
    first.hover()
    first.get_by_title("Edit").click()
    editor = first.locator("textarea.editor__input")
    expect(editor).to_be_focused()
    editor.fill("Hallo Ben, das Angebot für Nordhafen II ist raus.")
    editor.press("Enter")
    on_b = b.locator("article.msg", has_text="Nordhafen II ist raus")
    expect(on_b).to_have_count(1)
    expect(on_b.locator(".msg__edited")).to_have_text("(edited)")
    expect(b.locator(".msg__body", has_text="das Angebot für Nordhafen ist raus")).to_have_count(0)

    # Anna writes something by mistake and deletes it; Ben sees the tombstone.
    a.locator("#composer-body").fill("Falscher Chat, bitte ignorieren")
    a.locator("#composer-body").press("Enter")
    expect(b.locator(".msg__body", has_text="Falscher Chat")).to_have_count(1)
    mistake = a.locator("article.msg", has_text="Falscher Chat")
    asked: list[str] = []

    def confirm(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    a.once("dialog", confirm)
    mistake.hover()
    mistake.get_by_title("Delete").click()
    expect(a.locator("article.msg.msg--deleted .msg__tombstone")).to_have_text("This message was deleted.")
    expect(b.locator("article.msg.msg--deleted .msg__tombstone")).to_have_text("This message was deleted.")
    expect(b.get_by_text("Falscher Chat")).to_have_count(0)
    assert asked == ["Delete this message? Everyone will see that it was deleted."]
    screenshot(a, "chat-direct-anna-desktop", full_page=False)
    screenshot(b, "chat-direct-ben-desktop", full_page=False)

    # Each message is shown exactly once on both sides, with nothing reloaded.
    for page in (a, b):
        expect(page.locator("article.msg")).to_have_count(3)
    assert problems_a + problems_b == []
    for context in contexts:
        context.close()
