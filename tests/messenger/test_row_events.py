"""A message is drawn one way: a live event carries the row the page draws,
rendered once per event (not once per socket), and a resume replays the same
row shape."""

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.utils import timezone

from accounts.models import User
from messenger import events, rendering, selectors, services
from messenger.models import Conversation
from tests.messenger.conftest import run
from tests.messenger.conftest import signed_in_socket as connect

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_channel_layer")]


class Counted:
    """Wraps a drawing function and counts its calls (from any thread)."""

    def __init__(self, function: Callable[..., str]) -> None:
        self.function = function
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        return self.function(*args, **kwargs)


@pytest.fixture
def rows(monkeypatch: pytest.MonkeyPatch) -> Counted:
    counted = Counted(rendering.message_row_html)
    monkeypatch.setattr(events, "message_row_html", counted)
    return counted


@pytest.fixture
def pills(monkeypatch: pytest.MonkeyPatch) -> Counted:
    counted = Counted(rendering.reactions_html)
    monkeypatch.setattr(events, "reactions_html", counted)
    return counted


@pytest.fixture
def channel(alice: User, bob: User, charlie: User) -> Conversation:
    return services.channel_create(actor=alice, name="general", member_ids=[bob.pk, charlie.pk])


def test_a_message_frame_carries_its_row_drawn_once_for_three_sockets(
    alice: User, bob: User, charlie: User, channel: Conversation, rows: Counted
) -> None:
    async def scenario() -> None:
        sockets = [await connect(alice), await connect(bob), await connect(charlie)]
        body = "Kick-off at *nine*"
        await sockets[0].send(
            {"type": "send", "conversation": channel.pk, "body": body, "client_id": str(uuid.uuid4())}
        )
        frames = [await socket.receive_type("message") for socket in sockets]
        for socket in sockets:
            await socket.close()

        row = frames[0]["message"]["row"]
        assert all(frame["message"]["row"] == row for frame in frames)
        assert row.startswith(f'<article id="m{frames[0]["message"]["id"]}" class="msg"')
        assert "<p>Kick-off at <em>nine</em></p>" in row
        assert f'data-author="{alice.pk}"' in row
        # Drawn for every reader alike: no reader's marks, no session's CSRF token.
        assert "msg--mine" not in row and "csrfmiddlewaretoken" not in row
        assert rows.calls == 1

    run(scenario)


def test_an_edit_a_reaction_and_a_deletion_carry_what_the_page_draws(
    alice: User, bob: User, channel: Conversation, rows: Counted, pills: Counted
) -> None:
    sent = services.message_send(actor=alice, conversation_id=channel.pk, body="Draft").message
    services.message_send(actor=alice, conversation_id=channel.pk, body="Next line, same run")
    rows.calls = 0

    async def scenario() -> None:
        a, b, c = await connect(alice), await connect(bob), await connect(bob)
        await a.send({"type": "react", "message": sent.pk, "emoji": "👍"})
        reacted = [await socket.receive_type("reaction") for socket in (a, b, c)]
        await a.send({"type": "edit", "message": sent.pk, "body": "Final"})
        edited = [await socket.receive_type("message_edited") for socket in (a, b, c)]
        await a.send({"type": "delete", "message": sent.pk})
        deleted = [await socket.receive_type("message_deleted") for socket in (a, b, c)]
        for socket in (a, b, c):
            await socket.close()

        assert pills.calls == 1 and rows.calls == 2
        pill = reacted[0]["reactions"]
        assert pill.startswith('<div class="reactions" data-reactions>')
        assert f'data-users="{alice.pk}"' in pill and "👍" in pill
        assert 'class="reaction"' in pill  # whose it is, each page marks for itself
        row = edited[0]["message"]["row"]
        assert "<p>Final</p>" in row and "(edited)" in row
        assert f'data-users="{alice.pk}"' in row  # the reaction stays in the row
        tombstone = deleted[0]["message"]["row"]
        assert "This message was deleted." in tombstone and "Final" not in tombstone
        assert "msg--deleted" in tombstone
        assert all(f["message"]["row"] == tombstone for f in deleted)

    run(scenario)


def test_a_resume_replays_the_same_row_as_the_live_event(
    alice: User, bob: User, channel: Conversation
) -> None:
    start = selectors.latest_event_id()

    async def scenario() -> None:
        b = await connect(bob)
        await sync_to_async(services.message_send)(actor=alice, conversation_id=channel.pk, body="One")
        await sync_to_async(services.message_send)(actor=alice, conversation_id=channel.pk, body="Two")
        live = [await b.receive_type("message"), await b.receive_type("message")]
        # Another tab of Bob's, drawn before the two: it resumes from there.
        c = await connect(bob)
        await c.send({"type": "resume", "after": start})
        replayed = [await c.receive_type("message"), await c.receive_type("message")]
        await b.close()
        await c.close()

        assert [f["message"]["row"] for f in replayed] == [f["message"]["row"] for f in live]
        # The second continues the first's run: one rule, on the server.
        assert 'class="msg"' in live[0]["message"]["row"]
        assert 'class="msg msg--cont"' in live[1]["message"]["row"]

    run(scenario)


def test_the_live_row_is_the_row_of_the_page(alice: User, bob: User, channel: Conversation) -> None:
    """Apart from what the page marks for its reader (the CSRF tokens of its
    forms), the frame's row is the page's row: same template, same data."""
    sent = services.message_send(actor=alice, conversation_id=channel.pk, body="Same *row*").message
    event = selectors.events_after(user=bob, after=selectors.latest_event_id() - 1, limit=10)[0][0]
    row = events.event_payload(event)["message"]["row"]
    client = Client()
    client.force_login(bob)
    bob.time_zone = "UTC"
    bob.save(update_fields=["time_zone"])
    page = client.get(channel.get_absolute_url()).content.decode()

    start = page.index(f'<article id="m{sent.pk}"')
    drawn = page[start : page.index("</article>", start) + len("</article>")]
    without_tokens = "".join(
        part.split(">", 1)[1] if i else part
        for i, part in enumerate(drawn.split('<input type="hidden" name="csrfmiddlewaretoken"'))
    )
    assert without_tokens == row


def test_a_restricted_persons_message_is_hidden_in_its_replayed_frame(
    alice: User, bob: User, channel: Conversation
) -> None:
    start = selectors.latest_event_id()
    services.message_send(actor=alice, conversation_id=channel.pk, body="A private matter")
    # As the restriction of processing leaves it (the workflow has its own tests).
    User.objects.filter(pk=alice.pk).update(processing_restricted_at=timezone.now())

    found, _ = selectors.events_after(user=bob, after=start, limit=10)
    frame = events.event_payloads(found)[-1]

    assert "private matter" not in json.dumps(frame)
    assert "Hidden at the author's request" in frame["message"]["row"]
    assert "data-source" not in frame["message"]["row"]
