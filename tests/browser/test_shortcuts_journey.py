"""Keyboard only: the shortcut help, the quick switcher, editing with Up, Esc to read.

Ben works in Tokyo: the exact time on hover is in his own time zone.
"""

import re
import time
import uuid
import zoneinfo
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from django.db import connections
from django.utils import timezone
from playwright.sync_api import Browser, expect

from accounts.models import User
from messenger import services as chat
from messenger.models import Conversation, Membership, Message
from tests.browser.conftest import DESKTOP, watch_console
from tests.browser.test_chat_journey import sign_in
from tests.factories import make_user
from tests.waiting import GENEROUS, wait_until

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
T = TypeVar("T")


def off_the_loop(work: Callable[[], T]) -> T:
    """Run ``work`` in a thread of its own: chat services broadcast on commit through
    ``async_to_sync``, which cannot run where Playwright's event loop runs."""

    def run() -> T:
        try:
            return work()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def person(name: str, **fields: object) -> User:
    local = name.split()[0].lower()
    return make_user(email=f"{local}.{uuid.uuid4().hex[:6]}@kontor.example", display_name=name, **fields)


def exact(moment: datetime) -> str:
    """The title the page shows: "Friday, 4 December 2026, 14:02" in Tokyo."""
    local = timezone.localtime(moment, TOKYO)
    return f"{local:%A}, {local.day} {local:%B %Y, %H:%M}"


def test_keyboard_shortcuts_journey(
    browser: Browser, browser_db: None, live_server_url: str, screenshot: Callable[..., Path]
) -> None:
    anna, ben = person("Anna Albers"), person("Ben Berger", time_zone="Asia/Tokyo")

    def set_up() -> tuple[Conversation, Conversation]:
        group = chat.group_create(actor=anna, name="Projekt Nordhafen", member_ids=[ben.pk])
        kickoff = chat.message_send(actor=anna, conversation_id=group.pk, body="Kick-off ist am Montag.")
        # Written yesterday: the label says so.
        Message.objects.filter(pk=kickoff.message.pk).update(created_at=timezone.now() - timedelta(days=1))
        dm = chat.direct_open(actor=anna, other_user_id=ben.pk)
        for n in range(1, 41):
            chat.message_send(actor=anna, conversation_id=dm.pk, body=f"Punkt {n} der Liste für Nordhafen.")
        chat.message_send(actor=ben, conversation_id=dm.pk, body="Ich schaue mir alles bis Freitag an.")
        return group, dm

    group, dm = off_the_loop(set_up)

    context = browser.new_context(base_url=live_server_url, viewport=DESKTOP)
    page = sign_in(context, ben)
    problems = watch_console(page)
    frames: list[str] = []
    page.on("websocket", lambda socket: socket.on("framereceived", lambda frame: frames.append(str(frame))))

    def ready(*, socket: bool = True) -> None:
        """The page's scripts run (they show the button) and its socket has resumed."""
        expect(page.get_by_role("button", name="Keyboard shortcuts")).to_be_visible()
        if not socket:
            return
        deadline = time.monotonic() + GENEROUS
        while not any('"resumed"' in frame for frame in frames):
            assert time.monotonic() < deadline, "the socket did not resume"
            page.wait_for_timeout(100)  # lets Playwright deliver the socket's frames

    ready(socket=False)  # the home page's socket opened before the listener

    # "?" opens the help, which lists the shortcuts; Esc closes it.
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    page.keyboard.press("?")
    expect(help_dialog).to_be_visible()
    for text in ("Jump to a conversation", "Mark the open conversation as read", "Edit your last message"):
        expect(help_dialog).to_contain_text(text)
    expect(help_dialog.locator("kbd", has_text="K")).to_be_visible()
    screenshot(page, "shortcuts-help-desktop", full_page=False)
    page.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()

    # The visible button opens it too; closing gives the focus back to the button.
    button = page.get_by_role("button", name="Keyboard shortcuts")
    button.focus()
    page.keyboard.press("Enter")
    expect(help_dialog).to_be_visible()
    help_dialog.get_by_role("button", name="Close").click()
    expect(help_dialog).to_be_hidden()
    expect(button).to_be_focused()

    # Ctrl-K, part of a name, Enter: the conversation opens.
    switcher = page.get_by_role("dialog", name="Jump to a conversation")
    page.keyboard.press("Control+k")
    expect(switcher).to_be_visible()
    field = switcher.get_by_role("combobox", name="Jump to a conversation")
    expect(field).to_be_focused()
    field.press_sequentially("nordh")
    expect(switcher.get_by_role("option")).to_have_count(1)
    expect(switcher.get_by_role("option", selected=True)).to_contain_text("Projekt Nordhafen")
    screenshot(page, "shortcuts-switcher-desktop", full_page=False)
    frames.clear()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/c/{group.pk}/$"))
    ready()
    expect(page.locator("[data-conversation-title]")).to_have_text("Projekt Nordhafen")
    kickoff = Message.objects.get(conversation=group)
    yesterday = timezone.localtime(kickoff.created_at, TOKYO)
    expect(page.locator(f"#m{kickoff.pk} .msg__time")).to_have_text(f"Yesterday {yesterday:%H:%M}")
    expect(page.locator(f"#m{kickoff.pk} .msg__time")).to_have_attribute("title", exact(kickoff.created_at))

    # Arrow keys move through the list; Esc closes it, and Ctrl-K works from the composer.
    page.locator("#composer-body").focus()
    page.keyboard.press("Control+k")
    expect(switcher).to_be_visible()
    field.press_sequentially("anna")
    expect(switcher.get_by_role("option", selected=True)).to_contain_text("Anna Albers")
    page.keyboard.press("Escape")
    expect(switcher).to_be_hidden()
    expect(page.locator("#composer-body")).to_be_focused()
    page.keyboard.press("Control+k")
    field.press_sequentially("a")
    options = switcher.get_by_role("option")
    expect(options.first).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowDown")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    field.fill("")
    field.press_sequentially("anna alb")
    frames.clear()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/c/{dm.pk}/$"))
    ready()

    # Message times: a relative label, the exact time in Ben's zone on hover.
    first = Message.objects.filter(conversation=dm).order_by("seq").first()
    assert first is not None
    stamp = page.locator(f"#m{first.pk} .msg__time")
    stamp.scroll_into_view_if_needed()
    stamp.hover()
    expect(stamp).to_have_attribute("title", exact(first.created_at))
    expect(stamp).to_have_text(re.compile(r"^(just now|\d+ min)$"))

    # Up in the empty composer edits Ben's own last message; Esc cancels, focus goes back.
    composer = page.locator("#composer-body")
    composer.focus()
    page.keyboard.press("ArrowUp")
    mine = page.locator("article.msg", has_text="Ich schaue mir alles bis Freitag an.")
    editor = mine.locator("textarea.editor__input")
    expect(editor).to_be_focused()
    expect(editor).to_have_value("Ich schaue mir alles bis Freitag an.")
    screenshot(page, "shortcuts-edit-last-desktop", full_page=False)
    page.keyboard.press("Escape")
    expect(editor).to_have_count(0)
    expect(composer).to_be_focused()

    # Scrolled back in the history, a new message from Anna stays unread...
    page.locator("[data-scroller]").evaluate("el => { el.scrollTop = -el.scrollHeight; }")
    expect(page.locator("[data-jump]")).to_be_hidden()
    # Scrolled back as the page sees it (static/js/chat/conversation.js: more than 80 px from the bottom).
    page.wait_for_function("() => Math.abs(document.querySelector('[data-scroller]').scrollTop) >= 80")
    # (Anna writes from her own browser: without Redis only the server's process can broadcast.)
    anna_context = browser.new_context(base_url=live_server_url, viewport=DESKTOP)
    a = sign_in(anna_context, anna)
    a.goto(f"/c/{dm.pk}/")
    a.locator("#composer-body").fill("Noch eine Frage zum Angebot.")
    a.locator("#composer-body").press("Enter")
    expect(page.locator(".msg__body", has_text="Noch eine Frage zum Angebot.")).to_have_count(1)
    item = page.locator(f'[data-sidebar] a[data-conversation="{dm.pk}"]')
    expect(item.locator("[data-mentions]")).to_be_visible()
    expect(page.locator("[data-jump]")).to_be_visible()
    screenshot(page, "shortcuts-unread-before-esc-desktop", full_page=False)

    # ... until Esc marks the conversation read.
    page.keyboard.press("Escape")
    expect(item.locator("[data-mentions]")).to_be_hidden()
    latest = Message.objects.filter(conversation=dm).order_by("-seq").first()
    assert latest is not None
    membership = Membership.objects.get(conversation=dm, user=ben)

    def read_up_to_latest() -> bool:
        membership.refresh_from_db()
        return membership.last_read_seq >= latest.seq

    wait_until(read_up_to_latest, message="Esc marked the conversation read")
    assert membership.last_read_seq == latest.seq
    screenshot(page, "shortcuts-read-after-esc-desktop", full_page=False)

    assert problems == []
    anna_context.close()
    context.close()
