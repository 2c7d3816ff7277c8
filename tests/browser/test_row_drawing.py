"""A message is drawn one way: the row a live page gets over the socket is the
row the page shows after a reload.

Ben has a channel open. Anna writes (mentioning him), Jana writes from
outside the company (by email), Ben writes and reacts, and Leo's message
reaches him through a resume after his network was down, by which time Leo
has left the company. Every row that arrived live, once marked for Ben by the
page's script, equals the same row after a reload: the same template drew
both (``messenger/_message.html``), "(external)" and "(left the company)"
included.
"""

import re
from collections.abc import Callable
from pathlib import Path

from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from accounts.models import User
from messenger import services
from messenger.services import external
from tests.browser.conftest import DESKTOP, watch_console
from tests.browser.test_chat_journey import person, sign_in
from tests.browser.test_external_journey import off_loop
from tests.browser.test_resume_journey import RECONNECT_TIMEOUT, Network

# The rows of the log as comparable text: what differs between two drawings
# of the same row by design is left out. A CSRF token is masked afresh for
# every form; the label beside the author's name says how long ago ("just
# now", "3 min"), so it depends on the moment it was drawn (its datetime and
# exact title stay in).
PROJECTION = """() => Array.from(document.querySelectorAll("[data-log] article.msg")).map((row) => {
  const copy = row.cloneNode(true);
  copy.querySelectorAll("input[name=csrfmiddlewaretoken]").forEach((el) => el.setAttribute("value", "…"));
  copy.querySelectorAll("time.msg__time").forEach((el) => { el.textContent = "…"; });
  return copy.outerHTML.replace(/>\\s+</g, "><").replace(/\\s+/g, " ");
})"""


def rows(page: Page) -> list[str]:
    return list(page.evaluate(PROJECTION))


def test_a_live_row_and_a_reloaded_row_are_the_same(
    browser: Browser, browser_db: None, live_server_url: str, screenshot: Callable[..., Path]
) -> None:
    anna, ben, leo = person("Anna Albers"), person("Ben Berger"), person("Leo Lang")
    channel = off_loop(services.channel_create, actor=anna, name="nordhafen", member_ids=[ben.pk, leo.pk])
    off_loop(external.conversation_set_allows_external, actor=anna, conversation_id=channel.pk, allowed=True)
    jana = off_loop(
        external.external_contact_add,
        actor=anna,
        conversation_id=channel.pk,
        email="jana.novak@client.example",
        name="Jana Novák",
    ).user
    off_loop(services.message_send, actor=anna, conversation_id=channel.pk, body="Before Ben looked")

    context = browser.new_context(base_url=live_server_url, viewport=DESKTOP)
    network = Network()
    context.route_web_socket(re.compile(r"/ws/$"), network.route)
    b = sign_in(context, ben)
    problems = watch_console(b)
    b.goto(f"/c/{channel.pk}/")
    expect(b.locator("[data-app]")).to_have_attribute("data-socket", "open")
    log = b.locator("[data-log]")

    # Live: Anna mentions Ben (twice in a row: one run), Jana writes by email.
    for author, body in [
        (anna, "@ben.berger the plan is *ready*"),
        (anna, "Second line of the run"),
        (jana, "We sign on Monday."),
    ]:
        off_loop(services.message_send, actor=author, conversation_id=channel.pk, body=body)
    expect(log.locator("article.msg", has_text="We sign on Monday.")).to_contain_text("(external)")
    expect(log.locator("article.msg.msg--mention", has_text="the plan is")).to_have_count(1)
    expect(log.locator("article.msg.msg--cont", has_text="Second line of the run")).to_have_count(1)

    # Ben answers and reacts over the socket.
    b.locator("#composer-body").fill("Thanks, I will check it")
    b.locator("#composer-body").press("Enter")
    mine = log.locator("article.msg.msg--mine:not(.msg--pending)", has_text="Thanks, I will check it")
    expect(mine).to_have_count(1)
    jana_row = log.locator("article.msg", has_text="We sign on Monday.")
    jana_row.hover()
    jana_row.locator("summary[title='Add a reaction']").click()
    jana_row.locator(".picker__emoji", has_text="👍").click()
    expect(jana_row.locator(".reaction.is-mine")).to_have_count(1)

    # Leo writes while Ben's network is down, then leaves the company; Ben's
    # page gets his row when the socket resumes.
    network.drop()
    expect(b.locator("[data-app]")).to_have_attribute("data-socket", "closed")
    off_loop(services.message_send, actor=leo, conversation_id=channel.pk, body="Handing over to Anna")
    User.objects.filter(pk=leo.pk).update(offboarded_at=timezone.now(), is_active=False)
    network.restore()
    leo_row = log.locator("article.msg", has_text="Handing over to Anna")
    expect(leo_row).to_contain_text("(left the company)", timeout=RECONNECT_TIMEOUT)

    live = rows(b)
    assert len(live) == 6
    screenshot(b, "row-drawing-live", full_page=False)

    b.reload()
    expect(b.locator("[data-app]")).to_have_attribute("data-socket", "open")
    reloaded = rows(b)
    screenshot(b, "row-drawing-reloaded", full_page=False)

    assert reloaded == live
    assert any("(left the company)" in row for row in reloaded)
    assert any("(external)" in row for row in reloaded)
    assert problems == []
