"""A client takes part by email: the channel's owner allows external
participants, adds the client's buyer, and everyone sees who is outside."""

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from playwright.sync_api import Browser, expect

from messenger import services
from messenger.mail import incoming, tokens
from messenger.models import Conversation
from tests.browser.conftest import DESKTOP, PHONE, watch_console
from tests.browser.test_chat_journey import person, sign_in

T = TypeVar("T")

REPLY = b"""From: Jana Novak <jana.novak@client.example>
To: %s
Subject: Re: [Kontor] #tender-nordhafen
Message-ID: <r1.jana@client.example>
Content-Type: text/plain; charset=utf-8

Thank you, we will send the signed order on Monday.

On Mon, 7 Dec 2026 at 10:00, Anna Albers via Kontor <reply@kontor.example> wrote:
> Welcome, Jana.
"""


def off_loop(function: Callable[..., T], **kwargs: Any) -> T:
    """Run a service in a thread of its own: Playwright's event loop runs in this
    one, and services broadcast on commit (async_to_sync refuses a running loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, **kwargs).result()


def test_an_external_contact_is_added_and_shown_to_everyone(
    browser: Browser, browser_db: None, live_server_url: str, screenshot: Callable[..., Path]
) -> None:
    anna, ben = person("Anna Albers"), person("Ben Berger")
    channel = off_loop(
        services.channel_create, actor=anna, name="tender-nordhafen", member_ids=[ben.pk], is_private=True
    )
    context = browser.new_context(base_url=live_server_url, viewport=DESKTOP)
    a = sign_in(context, anna)
    problems = watch_console(a)

    a.goto(f"/c/{channel.pk}/settings/")
    a.get_by_role("button", name="Allow external participants").click()
    expect(a.get_by_text("Members can now add people outside the company.")).to_be_visible()
    a.get_by_label("Email address").fill("jana.novak@client.example")
    a.get_by_label("Name (optional)").fill("Jana Novák")
    a.get_by_role("button", name="Add external participant").click()
    expect(a.get_by_text("jana.novak@client.example was added")).to_be_visible()
    expect(a.locator(".member-row", has_text="Jana Novák")).to_contain_text("takes part by email")
    screenshot(a, "external-settings-desktop")

    # Jana answers the welcome mail; the reply lands in the channel as hers.
    jana = Conversation.objects.get(pk=channel.pk).memberships.get(user__is_external=True).user
    address = tokens.reply_address(conversation_id=channel.pk, user_id=jana.pk)
    off_loop(incoming.mail_receive, raw=REPLY % address.encode())

    a.goto(f"/c/{channel.pk}/")
    banner = a.locator("[data-external-banner]")
    expect(banner).to_contain_text("External participants:")
    expect(banner).to_contain_text("jana.novak@client.example")
    message = a.locator("article.msg", has_text="we will send the signed order on Monday")
    expect(message.locator(".msg__author")).to_contain_text("Jana Novák (external)")
    expect(a.locator("article.msg", has_text="Welcome, Jana")).to_have_count(0)
    screenshot(a, "external-chat-desktop", full_page=False)
    a.emulate_media(color_scheme="dark")  # the system's dark setting
    expect(banner).to_be_visible()
    screenshot(a, "external-chat-dark-desktop", full_page=False)

    phone = browser.new_context(base_url=live_server_url, viewport=PHONE)
    b = sign_in(phone, ben)
    b.goto(f"/c/{channel.pk}/")
    expect(b.locator("[data-external-banner]")).to_contain_text("Jana Novák")
    expect(b).to_have_url(re.compile(rf"/c/{channel.pk}/$"))
    screenshot(b, "external-chat-phone", full_page=False)
    assert problems == []
    for c in (context, phone):
        c.close()
