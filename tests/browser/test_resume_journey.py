"""Ben's network drops while Anna writes; his page catches up by itself.

Ben's websocket goes through Playwright (``route_web_socket``), so the test can
cut it like a dropped network would and refuse his reconnects until the network
is "back". Anna sends three messages in the meantime. When Ben's socket gets
through again, the page's script (static/js/chat/socket.js) resumes from the
last mark the server gave it (``{"type": "resume", "after": N}``,
docs/protocol.md, "Resuming") and the three messages appear once each, in
order, on the page he never left.
"""

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser, WebSocketRoute, expect

from tests.browser.conftest import DESKTOP, PHONE, watch_console
from tests.browser.test_chat_journey import person, sign_in

# Reconnects back off (about 0.5-1 s, 1-2 s, 2-4 s, …, at most 30 s): allow for a few.
RECONNECT_TIMEOUT = 30_000


class Network:
    """Ben's link to the server: up, or down (open sockets cut, new ones refused)."""

    def __init__(self) -> None:
        self.up = True
        self.open: list[tuple[WebSocketRoute, WebSocketRoute]] = []
        self.connections: list[list[dict[str, object]]] = []  # frames the page sent, per real connection
        self.received: list[dict[str, object]] = []  # frames the server sent the page
        self.refused = 0

    def route(self, ws: WebSocketRoute) -> None:
        if not self.up:
            self.refused += 1
            ws.close(code=1011, reason="network down")
            return
        server = ws.connect_to_server()
        frames: list[dict[str, object]] = []
        self.connections.append(frames)

        def to_server(message: str | bytes) -> None:
            frames.append(json.loads(message))
            server.send(message)

        def to_page(message: str | bytes) -> None:
            self.received.append(json.loads(message))
            ws.send(message)

        ws.on_message(to_server)
        server.on_message(to_page)
        self.open.append((ws, server))

    def mark(self) -> int:
        """The last mark the server gave the page (``resumed`` / ``synced``)."""
        marks = [f["event"] for f in self.received if f.get("type") in ("resumed", "synced")]
        return int(marks[-1]) if marks else 0  # type: ignore[call-overload]

    def drop(self) -> None:
        self.up = False
        # The socket of the page still open (earlier pages closed theirs as they went).
        _page_side, server_side = self.open[-1]
        server_side.close()  # the page side sees the close as well

    def restore(self) -> None:
        self.up = True


def test_messages_sent_while_the_network_is_down_arrive_after_the_reconnect(
    browser: Browser, browser_db: None, live_server_url: str, screenshot: Callable[..., Path]
) -> None:
    anna, ben = person("Anna Albers"), person("Ben Berger")
    context_a = browser.new_context(base_url=live_server_url, viewport=DESKTOP)
    context_b = browser.new_context(base_url=live_server_url, viewport=DESKTOP)
    network = Network()
    context_b.route_web_socket(re.compile(r"/ws/$"), network.route)

    a = sign_in(context_a, anna)
    a.goto("/people/")
    a.get_by_role("button", name=f"Message {ben}").click()
    expect(a).to_have_url(re.compile(r"/c/\d+/$"))
    conversation_url = a.url
    b = sign_in(context_b, ben)
    b.goto(conversation_url)
    expect(b.locator("[data-composer]")).to_be_visible()
    problems = [watch_console(a), watch_console(b)]

    # Ben's socket is up: Anna's first message reaches him live.
    a.locator("#composer-body").fill("Bist du heute im Büro?")
    a.locator("#composer-body").press("Enter")
    bodies_b = b.locator("article.msg .msg__body")
    expect(bodies_b).to_have_text(["Bist du heute im Büro?"])
    live = len(network.connections)  # the home page's socket, then the conversation's
    # The server confirms what it delivered (a mark at or past that message) a moment later.
    first_message = next(f for f in network.received if f.get("type") == "message")
    deadline = time.monotonic() + 30
    while network.mark() < first_message["event"]:  # type: ignore[operator]
        assert time.monotonic() < deadline, "no mark past the live message within 30 s"
        b.wait_for_timeout(100)
    # A marker on Ben's window: gone if the page reloads or navigates.
    b.evaluate("() => { window.kontorResumeMarker = 'same page'; }")

    # Ben's network drops; the browser sees the socket close and retries in vain.
    network.drop()
    context_b.set_offline(True)
    sent = [
        "Erstens: das Angebot ist raus.",
        "Zweitens: der Termin ist am Dienstag.",
        "Drittens: bitte Rückmeldung.",
    ]
    for text in sent:
        a.locator("#composer-body").fill(text)
        a.locator("#composer-body").press("Enter")
        expect(a.locator("article.msg .msg__body", has_text=text)).to_have_count(1)
    expect(a.locator("article.msg:not(.msg--pending)")).to_have_count(4)
    # Nothing reaches Ben while he is offline, and his window says so.
    expect(bodies_b).to_have_text(["Bist du heute im Büro?"])
    status = b.locator("[data-connection]")
    expect(status).to_be_visible()
    expect(status).to_have_text("You are offline. Messages you write go out when the connection is back.")
    screenshot(b, "resume-ben-offline-desktop", full_page=False)
    b.set_viewport_size(PHONE)
    screenshot(b, "resume-ben-offline-phone", full_page=False)
    b.set_viewport_size(DESKTOP)

    # The network comes back: the page retries at once, gets through and resumes.
    network.restore()
    context_b.set_offline(False)
    expect(bodies_b).to_have_text(["Bist du heute im Büro?", *sent], timeout=RECONNECT_TIMEOUT)
    expect(status).to_have_text("Connected again.")
    expect(status).to_be_hidden()
    for text in sent:
        expect(b.locator("article.msg", has_text=text)).to_have_count(1)
    assert b.evaluate("() => window.kontorResumeMarker") == "same page"
    assert b.url == conversation_url

    # The reconnect asked for what came after the last mark the server gave the page.
    assert len(network.connections) > live
    first, last = network.connections[live - 1][0], network.connections[-1][0]
    assert first["type"] == "resume" and last["type"] == "resume"
    assert isinstance(first["after"], int) and isinstance(last["after"], int)
    assert last["after"] > first["after"] > 0

    # Everything shown once, nothing doubled by the replay.
    expect(b.locator("article.msg")).to_have_count(4)
    screenshot(b, "resume-ben-caught-up-desktop", full_page=False)
    b.set_viewport_size(PHONE)
    expect(bodies_b.last).to_be_visible()
    screenshot(b, "resume-ben-caught-up-phone", full_page=False)
    screenshot(a, "resume-anna-desktop", full_page=False)
    a.set_viewport_size(PHONE)
    screenshot(a, "resume-anna-phone", full_page=False)

    assert problems == [[], []]
    context_a.close()
    context_b.close()
