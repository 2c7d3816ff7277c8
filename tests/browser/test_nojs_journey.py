"""Kontor without JavaScript: every page works through links and plain form posts.

Anna's browser runs no script at all. She signs in, opens her conversation with
Ben from the sidebar, reads what he wrote, answers through the plain form (the
redirect shows her message), looks Ben up in the people directory and joins a
channel from the channel browser.
"""

import re
import uuid
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from messenger import services as chat
from messenger.models import Conversation
from tests.browser.conftest import DESKTOP, PHONE, watch_console
from tests.browser.test_chat_journey import person, sign_in
from tests.browser.test_offboarding_journey import off_the_loop


def both_widths(page: Page, screenshot: Callable[..., Path], name: str) -> None:
    screenshot(page, f"{name}-desktop")
    page.set_viewport_size(PHONE)
    screenshot(page, f"{name}-phone")
    page.set_viewport_size(DESKTOP)


def test_without_javascript_one_reads_writes_and_finds_people_and_channels(
    browser: Browser, browser_db: None, live_server_url: str, screenshot: Callable[..., Path]
) -> None:
    anna, ben = person("Anna Albers"), person("Ben Berger")
    channel_name = f"lager-{uuid.uuid4().hex[:4]}"

    def conversations() -> tuple[Conversation, Conversation]:
        dm = chat.direct_open(actor=ben, other_user_id=anna.pk)
        chat.message_send(actor=ben, conversation_id=dm.pk, body="Hallo Anna, der Lageplan ist fertig.")
        chat.message_send(actor=ben, conversation_id=dm.pk, body="Magst du **heute** drüberschauen?")
        channel = chat.channel_create(actor=ben, name=channel_name, topic="Das Lager in Nord")
        return dm, channel

    dm, channel = off_the_loop(conversations)

    context = browser.new_context(base_url=live_server_url, viewport=DESKTOP, java_script_enabled=False)
    page = sign_in(context, anna)
    problems = watch_console(page)
    both_widths(page, screenshot, "nojs-home")

    # She opens the conversation from the sidebar and reads Ben's messages.
    item = page.locator('[data-sidebar] a[data-kind="direct"]', has_text=str(ben))
    expect(item).to_be_visible()
    item.click()
    expect(page).to_have_url(re.compile(rf"/c/{dm.pk}/$"))
    bodies = page.locator("article.msg .msg__body")
    expect(bodies).to_have_text(["Hallo Anna, der Lageplan ist fertig.", "Magst du heute drüberschauen?"])
    expect(bodies.nth(1).locator("strong")).to_have_text("heute")
    # No script ran: the plain file input shows, not the paperclip that stands in for it.
    expect(page.locator("[data-attach-plain]")).to_be_visible()
    expect(page.locator("[data-attach-button]")).to_be_hidden()
    both_widths(page, screenshot, "nojs-conversation")

    # She answers through the plain form: the redirect shows her message after his.
    page.locator("#composer-body").fill("Ja, mache ich nach dem Mittag.")
    with page.expect_navigation():
        page.locator("#composer").get_by_role("button", name="Send").click()
    # The redirect points at the new message (``#m<id>``), which the page scrolls to.
    expect(page).to_have_url(re.compile(rf"/c/{dm.pk}/#m\d+$"))
    expect(bodies).to_have_text(
        [
            "Hallo Anna, der Lageplan ist fertig.",
            "Magst du heute drüberschauen?",
            "Ja, mache ich nach dem Mittag.",
        ]
    )
    fragment = page.url.rsplit("#", 1)[1]
    expect(page.locator(f"#{fragment}")).to_contain_text("Ja, mache ich nach dem Mittag.")
    expect(page.locator(f"#{fragment}")).to_be_in_viewport()
    expect(page.locator("#composer-body")).to_have_value("")
    both_widths(page, screenshot, "nojs-conversation-sent")

    # The people directory lists Ben, with a button to message him.
    page.goto("/people/")
    expect(page.get_by_role("button", name=f"Message {ben}")).to_be_visible()
    both_widths(page, screenshot, "nojs-people")
    page.get_by_role("button", name=f"Message {ben}").click()
    expect(page).to_have_url(re.compile(rf"/c/{dm.pk}/$"))

    # The channel browser lists Ben's channel; joining is a plain form post too.
    page.goto("/channels/")
    row = page.locator(".channel-row", has_text=channel_name)
    expect(row).to_contain_text("Das Lager in Nord")
    both_widths(page, screenshot, "nojs-channels")
    row.get_by_role("button", name=f"Join #{channel_name}").click()
    expect(page).to_have_url(re.compile(rf"/c/{channel.pk}/$"))
    expect(page.locator("[data-conversation-title]")).to_contain_text(channel_name)
    expect(page.locator('[data-sidebar] a[data-kind="channel"]', has_text=channel_name)).to_be_visible()
    both_widths(page, screenshot, "nojs-channel-joined")

    assert problems == []
    context.close()
