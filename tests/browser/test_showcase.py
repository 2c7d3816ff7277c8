"""A busy channel as an employee sees it: the README's first picture.

A sales team's afternoon, made through the services: Markdown, a link, a
code, mentions, reactions, a reply, an edit and a deletion. Katrin read up to
a point, so the "New" divider sits above what came after; Jonas types while
she looks. Checked is what she would notice (divider, day separator, initials,
the highlighted mention, reactions, who is typing); the screenshots are taken
at desktop and phone width and in the dark theme.
"""

import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from django.utils import timezone
from playwright.sync_api import Browser, expect

from accounts.models import User
from messenger import services as chat
from messenger.models import Message
from tests.browser.conftest import DESKTOP, PHONE, watch_console
from tests.browser.test_chat_journey import sign_in
from tests.browser.test_offboarding_journey import off_the_loop
from tests.factories import make_user

BERLIN = ZoneInfo("Europe/Berlin")
TEAM = [
    ("Katrin Vogel", "Managing Director"),
    ("Jonas Becker", "Head of Sales"),
    ("Amira Haddad", "Key Account Manager"),
    ("Lukas Meyer", "Sales Representative"),
    ("Sofia Romano", "Head of Operations"),
    ("Markus Klein", "Head of Finance"),
]


def colleague(name: str, title: str) -> User:
    local = name.lower().replace(" ", ".")
    email = f"{local}.{uuid.uuid4().hex[:4]}@nordlicht.example"
    return make_user(email=email, display_name=name, job_title=title, time_zone="Europe/Berlin")


def test_a_sales_channel_in_the_afternoon(
    browser: Browser, browser_db: None, live_server_url: str, screenshot: Callable[..., Path]
) -> None:
    katrin, jonas, amira, lukas, sofia, markus = (colleague(name, title) for name, title in TEAM)

    def afternoon() -> int:
        channel = chat.channel_create(
            actor=jonas,
            name="sales-team",  # each test starts from an empty database
            topic="Pipeline, offers and customer visits · weekly sync Monday 9:30",
            member_ids=[katrin.pk, amira.pk, lukas.pk, sofia.pk, markus.pk],
        )

        def say(who: User, body: str, **extra: object) -> int:
            return chat.message_send(actor=who, conversation_id=channel.pk, body=body, **extra).message.pk  # type: ignore[arg-type]

        opener = say(jonas, "Brandt & Söhne want the pilot in September. Can we make that?")
        # The thread started yesterday afternoon (in her time zone, Europe/Berlin).
        yesterday = timezone.localtime(timezone.now(), BERLIN).replace(hour=16, minute=40) - timedelta(days=1)
        Message.objects.filter(pk=opener).update(created_at=yesterday)
        question = say(
            sofia, "If so, we have to reserve warehouse capacity now. How many units in the first shipment?"
        )
        say(amira, "Around 15 for the pilot, the rest in October.", reply_to_id=question)
        say(sofia, f"OK, it is on the plan. @{amira.handle} please loop me in on the delivery dates.")
        gone = say(lukas, "Draft numbers attached, ignore the old ones")
        chat.message_delete(actor=lukas, message_id=gone)
        say(
            markus,
            "Proposal template with the new payment terms: "
            "https://intranet.nordlicht.example/finance/templates — use **version 4**, not 3.",
        )
        moved = say(jonas, "Team call moved to **Thursday 15:00**, same link as always.")
        chat.message_edit(
            actor=jonas, message_id=moved, body="Team call moved to **Thursday 15:30**, same link as always."
        )
        chat.reaction_set(actor=amira, message_id=moved, emoji="👀")
        offer = say(lukas, "Revised offer for Brandt & Söhne is out ✅")
        chat.reaction_set(actor=jonas, message_id=offer, emoji="👍")
        chat.reaction_set(actor=katrin, message_id=offer, emoji="✅")
        chat.conversation_mark_read(actor=katrin, conversation_id=channel.pk, message_id=offer)
        say(amira, "Nice! `SO-2026-0815` is the order number if they confirm.")
        say(
            jonas,
            f"@{katrin.handle} could you join the Nordhafen call on Wednesday? Their CFO will be there.",
        )
        # The rest of her sidebar: a busy company channel, a group, a few direct messages.
        general = chat.channel_create(
            actor=markus, name="general", topic="Company-wide news", member_ids=[katrin.pk]
        )
        for n in range(3):
            chat.message_send(
                actor=markus, conversation_id=general.pk, body=f"Reminder {n + 1}: expense reports by Friday."
            )
        chat.channel_create(actor=sofia, name="warehouse-nord", member_ids=[katrin.pk])
        chat.group_create(actor=amira, name="Trade fair Hamburg", member_ids=[katrin.pk, lukas.pk])
        for other, text in (
            (markus, "The Q3 numbers are in the shared folder."),
            (sofia, "Thanks for today!"),
        ):
            dm = chat.direct_open(actor=other, other_user_id=katrin.pk)
            chat.message_send(actor=other, conversation_id=dm.pk, body=text)
        return channel.pk

    channel = off_the_loop(afternoon)
    contexts = [browser.new_context(base_url=live_server_url, viewport=DESKTOP) for _ in range(2)]
    k, j = sign_in(contexts[0], katrin), sign_in(contexts[1], jonas)
    problems = watch_console(k)
    k.goto(f"/c/{channel}/")
    j.goto(f"/c/{channel}/")

    log = k.locator("[data-log]")
    expect(log.locator(".day-divider")).to_have_text(["Yesterday", "Today"])
    expect(log.locator("article.msg", has_text="pilot in September").locator(".msg__time")).to_have_text(
        "Yesterday 16:40"
    )
    # "New" sits right above the first message after the one she read.
    expect(log.locator("[data-new-divider] + article.msg .msg__body")).to_contain_text("SO-2026-0815")
    mention = log.locator("article.msg.msg--mention")
    expect(mention).to_have_count(1)
    expect(mention).to_contain_text("could you join the Nordhafen call")
    expect(log.locator("article.msg", has_text="Thursday 15:30").locator(".msg__edited")).to_have_text(
        "(edited)"
    )
    expect(log.locator(".msg__tombstone")).to_have_text("This message was deleted.")
    expect(log.locator("article.msg", has_text="Revised offer").locator(".reaction")).to_have_count(2)
    expect(log.locator("article.msg", has_text="Around 15").locator(".msg__quote-text")).to_contain_text(
        "reserve warehouse capacity"
    )
    expect(log.locator("article.msg", has_text="Nice!").locator(".avatar").first).to_have_text("AH")
    expect(log.locator("a[href^='https://intranet.nordlicht.example/']")).to_have_count(1)

    j.locator("#composer-body").press_sequentially("Sounds good, I will")
    expect(k.locator("[data-typing]")).to_contain_text("Jonas")
    screenshot(k, "showcase-chat-desktop", full_page=False)
    k.emulate_media(color_scheme="dark")
    screenshot(k, "showcase-chat-dark-desktop", full_page=False)
    k.emulate_media(color_scheme="light")
    k.set_viewport_size(PHONE)
    expect(mention).to_be_visible()
    screenshot(k, "showcase-chat-phone", full_page=False)

    assert problems == []
    for context in contexts:
        context.close()
