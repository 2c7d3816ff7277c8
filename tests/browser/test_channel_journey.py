"""A channel from its first minute: created, people invited and joining, a mention.

Anna creates a public channel through the channel browser, invites Ben from its
settings page, Carol finds it in the channel browser and joins. Carol moves on to
the people page; when Anna mentions her, the channel's mention badge appears in
Carol's sidebar live (Ben, who was not mentioned, gets no badge).
"""

import re
import uuid
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DESKTOP, PHONE, watch_console
from tests.browser.test_chat_journey import person, sign_in


def both_widths(page: Page, screenshot: Callable[..., Path], name: str, *, full_page: bool = True) -> None:
    screenshot(page, f"{name}-desktop", full_page=full_page)
    page.set_viewport_size(PHONE)
    screenshot(page, f"{name}-phone", full_page=full_page)
    page.set_viewport_size(DESKTOP)


def test_a_channel_is_created_people_invited_and_join_and_a_mention_shows_live(
    browser: Browser, browser_db: None, live_server_url: str, screenshot: Callable[..., Path]
) -> None:
    anna, ben, carol = person("Anna Albers"), person("Ben Berger"), person("Carol Conrad")
    contexts = [browser.new_context(base_url=live_server_url, viewport=DESKTOP) for _ in range(3)]
    a, b, c = (sign_in(context, user) for context, user in zip(contexts, (anna, ben, carol), strict=True))
    problems = {"anna": watch_console(a), "ben": watch_console(b), "carol": watch_console(c)}
    name = f"nordhafen-{uuid.uuid4().hex[:4]}"

    # Anna opens the channel browser and creates a public channel.
    a.goto("/channels/")
    expect(a.get_by_role("heading", name="Browse channels")).to_be_visible()
    a.locator(".toolbar").get_by_role("link", name="New channel").click()
    expect(a).to_have_url(re.compile(r"/channels/new/$"))
    a.locator("#id_name").fill(name)
    a.locator("#id_topic").fill("Alles zum Projekt Nordhafen")
    a.get_by_label("Public: anyone in the company can find and join it").check()
    both_widths(a, screenshot, "channel-new")
    a.get_by_role("button", name="Create channel").click()
    expect(a).to_have_url(re.compile(r"/c/\d+/$"))
    channel_url = a.url
    expect(a.locator("[data-conversation-title]")).to_contain_text(name)
    expect(
        a.locator(f'[data-sidebar] a[data-kind="channel"][href="{channel_url[len(live_server_url) :]}"]')
    ).to_be_visible()

    # Ben waits on his home page; Anna invites him from the channel's settings.
    a.get_by_role("link", name="Members and settings").first.click()
    expect(a).to_have_url(re.compile(r"/c/\d+/settings/$"))
    add = a.locator("details.add-members")
    expect(add).to_have_attribute("open", "")  # she is alone in it: the picker is open
    add.locator("label.pick", has_text=str(ben)).locator("input[type=checkbox]").check()
    both_widths(a, screenshot, "channel-settings-invite")
    add.get_by_role("button", name=f"Add to #{name}").click()
    expect(a).to_have_url(re.compile(r"/c/\d+/settings/$"))
    expect(a.get_by_text("Added 1 person.")).to_be_visible()
    expect(a.locator(".member-list").first).to_contain_text(str(ben))
    ben_item = b.locator('[data-sidebar] a[data-kind="channel"]', has_text=name)
    expect(ben_item).to_be_visible()

    # Carol finds the channel in the browser and joins it.
    c.goto("/channels/")
    row = c.locator(".channel-row", has_text=name)
    expect(row).to_contain_text("2 members")
    expect(row).to_contain_text("Alles zum Projekt Nordhafen")
    both_widths(c, screenshot, "channel-browser")
    row.get_by_role("button", name=f"Join #{name}").click()
    expect(c).to_have_url(channel_url)
    expect(c.locator("[data-composer]")).to_be_visible()

    # Carol moves on to the people page; the channel sits in her sidebar, no badge.
    c.goto("/people/")
    carol_item = c.locator('[data-sidebar] a[data-kind="channel"]', has_text=name)
    expect(carol_item).to_be_visible()
    expect(carol_item.locator("[data-mentions]")).to_be_hidden()

    # Anna mentions Carol in the channel.
    a.goto(channel_url)
    a.locator("#composer-body").fill(f"Willkommen! @{carol.handle} kannst du die Pläne hochladen?")
    a.locator("#composer-body").press("Enter")
    sent = a.locator("article.msg", has_text="kannst du die Pläne hochladen?")
    expect(sent).to_have_count(1)
    expect(sent).not_to_have_class(re.compile("msg--pending"))
    expect(sent.locator(".mention")).to_have_text(f"@{carol}")

    # Carol's sidebar shows the mention live; Ben's shows only that it is unread.
    badge = carol_item.locator("[data-mentions]")
    expect(badge).to_be_visible()
    expect(badge.locator("[data-n]")).to_have_text("1")
    expect(carol_item).to_have_class(re.compile("is-unread"))
    expect(b.locator('[data-sidebar] a[data-kind="channel"]', has_text=name)).to_have_class(
        re.compile("is-unread")
    )
    expect(ben_item.locator("[data-mentions]")).to_be_hidden()
    both_widths(c, screenshot, "channel-mention-carol-people", full_page=False)
    both_widths(a, screenshot, "channel-mention-anna", full_page=False)

    # Carol opens it from the sidebar: the message is there, the badge goes.
    carol_item.click()
    expect(c).to_have_url(channel_url)
    expect(c.locator("article.msg .mention")).to_have_text(f"@{carol}")
    expect(
        c.locator('[data-sidebar] a[data-kind="channel"]', has_text=name).locator("[data-mentions]")
    ).to_be_hidden()

    assert problems == {"anna": [], "ben": [], "carol": []}
    for context in contexts:
        context.close()
