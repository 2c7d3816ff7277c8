"""The websocket, through the real ASGI stack (origin check, session auth).

Every client frame, every error code, outsiders, idempotent sends, resume,
live membership changes and presence: what two colleagues' browser tabs see.
"""

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.utils import timezone
from pytest_django import Settings

from accounts.models import User
from messenger import consumers, selectors, services
from messenger.models import Conversation, Event, Membership, Message, Reaction
from tests.factories import settings_change
from tests.messenger.conftest import Socket, open_socket, run
from tests.messenger.conftest import signed_in_socket as connect

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_channel_layer")]


async def settle(*sockets: Socket) -> None:
    """Read what arrives after connecting (presence) so that silence means something."""
    for socket in sockets:
        while not await socket.nothing(0.2):
            await socket.receive()


async def unexpected(socket: Socket, timeout: float = 0.2) -> list[dict[str, Any]]:
    """Frames other than presence that arrive within ``timeout`` (presence comes and
    goes with every colleague's tab, so it is no sign of a leak)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    frames = []
    while (left := deadline - loop.time()) > 0:
        if await socket.nothing(left):
            break
        frame = await socket.receive()
        if frame["type"] != "presence":
            frames.append(frame)
    return frames


async def receive_besides_presence(socket: Socket) -> dict[str, Any]:
    while (frame := await socket.receive())["type"] == "presence":
        pass
    return frame


async def frames_until(socket: Socket, type_: str) -> list[dict[str, Any]]:
    """Every frame but presence up to and including the first of ``type_``."""
    frames = []
    while True:
        frame = await receive_besides_presence(socket)
        frames.append(frame)
        if frame["type"] == type_:
            return frames


async def error(socket: Socket) -> dict[str, Any]:
    return await socket.receive_type("error")


async def still_works(socket: Socket) -> None:
    await socket.send({"type": "ping"})
    assert (await socket.receive_type("pong"))["type"] == "pong"


def send_frame(conversation: Conversation | int, body: str, client_id: str | None = None) -> dict[str, Any]:
    pk = conversation if isinstance(conversation, int) else conversation.pk
    return {"type": "send", "conversation": pk, "body": body, "client_id": client_id or str(uuid.uuid4())}


message_send = sync_to_async(services.message_send)


@pytest.fixture
def group(alice: User, bob: User, charlie: User) -> Conversation:
    return services.group_create(actor=alice, name="Launch", member_ids=[bob.pk, charlie.pk])


@pytest.fixture
def posted(dm: Conversation, alice: User) -> Message:
    return services.message_send(actor=alice, conversation_id=dm.pk, body="posted earlier").message


# --- Who may connect -------------------------------------------------------------------


def test_anonymous_socket_is_refused() -> None:
    async def scenario() -> None:
        connected, _ = await open_socket(None)
        assert not connected

    run(scenario)


def test_forged_origin_is_refused(alice: User) -> None:
    async def scenario() -> None:
        for origin in ("http://evil.example", "https://localhost.evil.example", "null"):
            connected, _ = await open_socket(alice, origin=origin)
            assert not connected, origin

    run(scenario)


def test_deactivated_account_is_refused(alice: User) -> None:
    User.objects.filter(pk=alice.pk).update(is_active=False)

    async def scenario() -> None:
        connected, _ = await open_socket(alice)
        assert not connected

    run(scenario)


def test_hello_tells_the_newest_event_and_ping_is_answered(alice: User, posted: Message) -> None:
    newest = Event.objects.order_by("-id").values_list("id", flat=True).first()

    async def scenario() -> None:
        connected, socket = await open_socket(alice)
        assert connected
        hello = await socket.receive_type("hello")
        assert hello == {"type": "hello", "user": alice.pk, "event": newest}
        await socket.send({"type": "ping"})
        assert await socket.receive_type("pong") == {"type": "pong"}
        await socket.close()

    run(scenario)


# --- Every client frame ------------------------------------------------------------------


def test_send_acks_the_sender_and_reaches_both_members(alice: User, bob: User, dm: Conversation) -> None:
    async def scenario() -> None:
        a, b = await connect(alice), await connect(bob)
        client_id = str(uuid.uuid4())

        await a.send(send_frame(dm, "Hello **Bob**", client_id))

        ack = await a.receive_type("ack")
        mine = await a.receive_type("message")
        theirs = await b.receive_type("message")
        assert ack["client_id"] == client_id
        assert ack["duplicate"] is False
        assert ack["seq"] == 1
        assert mine == theirs
        assert theirs["event"] == ack["event"]
        assert theirs["conversation"] == dm.pk
        message = theirs["message"]
        assert message["id"] == ack["message"]
        assert message["body"] == "Hello **Bob**"
        assert message["html"] == "<p>Hello <strong>Bob</strong></p>"
        assert message["author"]["id"] == alice.pk
        assert message["client_id"] == client_id
        assert (message["edited"], message["deleted"], message["reply_to"]) == (False, False, None)

        await b.send({**send_frame(dm, "Hi Alice"), "reply_to": message["id"]})
        reply = await a.receive_type("message")
        assert (reply["message"]["body"], reply["message"]["reply_to"]) == ("Hi Alice", message["id"])
        assert reply["message"]["seq"] == 2
        await a.close()
        await b.close()

    run(scenario)
    assert list(Message.objects.values_list("body", flat=True)) == ["Hello **Bob**", "Hi Alice"]


def test_edit_reaches_both_members(alice: User, bob: User, dm: Conversation, posted: Message) -> None:
    async def scenario() -> None:
        a, b = await connect(alice), await connect(bob)

        await a.send({"type": "edit", "message": posted.pk, "body": "posted *earlier*"})

        for socket in (a, b):
            frame = await socket.receive_type("message_edited")
            assert frame["message"]["id"] == posted.pk
            assert frame["message"]["body"] == "posted *earlier*"
            assert frame["message"]["html"] == "<p>posted <em>earlier</em></p>"
            assert frame["message"]["edited"] is True
        await a.close()
        await b.close()

    run(scenario)


def test_delete_sends_a_tombstone(alice: User, bob: User, dm: Conversation, posted: Message) -> None:
    async def scenario() -> None:
        a, b = await connect(alice), await connect(bob)

        await a.send({"type": "delete", "message": posted.pk})

        for socket in (a, b):
            frame = await socket.receive_type("message_deleted")
            message = frame["message"]
            assert message["id"] == posted.pk
            assert (message["body"], message["html"], message["deleted"]) == ("", "", True)
        await a.close()
        await b.close()

    run(scenario)
    assert Message.objects.get().deleted_at is not None


def test_react_and_unreact_reach_both_members(
    alice: User, bob: User, dm: Conversation, posted: Message
) -> None:
    async def scenario() -> None:
        a, b = await connect(alice), await connect(bob)

        await b.send({"type": "react", "message": posted.pk, "emoji": "👍"})
        for socket in (a, b):
            frame = await socket.receive_type("reaction")
            assert (frame["message"], frame["emoji"], frame["added"]) == (posted.pk, "👍", True)
            assert frame["user"]["id"] == bob.pk
        await b.send({"type": "unreact", "message": posted.pk, "emoji": "👍"})
        for socket in (a, b):
            frame = await socket.receive_type("reaction")
            assert (frame["emoji"], frame["added"]) == ("👍", False)
        await b.send({"type": "react", "message": posted.pk, "emoji": "🎉"})
        await b.send({"type": "react", "message": posted.pk, "emoji": "🎉", "remove": True})
        added, removed = await a.receive_type("reaction"), await a.receive_type("reaction")
        assert [(added["emoji"], added["added"]), (removed["emoji"], removed["added"])] == [
            ("🎉", True),
            ("🎉", False),
        ]
        await a.close()
        await b.close()

    run(scenario)
    assert not Reaction.objects.exists()


def test_read_reaches_the_other_member(alice: User, bob: User, dm: Conversation, posted: Message) -> None:
    async def scenario() -> None:
        a, b = await connect(alice), await connect(bob)

        await b.send({"type": "read", "conversation": dm.pk, "message": posted.pk})

        frame = await a.receive_type("read")
        assert frame == {"type": "read", "conversation": dm.pk, "user": bob.pk, "seq": posted.seq}
        await a.close()
        await b.close()

    run(scenario)
    assert Membership.objects.get(conversation=dm, user=bob).last_read_seq == posted.seq


def test_read_without_receipts_reaches_only_my_other_tabs(
    alice: User, bob: User, dm: Conversation, posted: Message
) -> None:
    settings_change(bob, send_read_receipts=False)

    async def scenario() -> None:
        a, b, b_elsewhere = await connect(alice), await connect(bob), await connect(bob)
        await settle(a, b, b_elsewhere)

        await b.send({"type": "read", "conversation": dm.pk})

        frame = await b_elsewhere.receive_type("read")
        assert (frame["user"], frame["seq"]) == (bob.pk, posted.seq)
        assert await unexpected(a, 0.2) == []
        for socket in (a, b, b_elsewhere):
            await socket.close()

    run(scenario)
    assert Membership.objects.get(conversation=dm, user=bob).last_read_seq == posted.seq


def test_typing_reaches_the_others_but_not_the_typist(alice: User, bob: User, dm: Conversation) -> None:
    async def scenario() -> None:
        a, b = await connect(alice), await connect(bob)
        await settle(a, b)

        await a.send({"type": "typing", "conversation": dm.pk})

        frame = await b.receive_type("typing")
        assert frame == {
            "type": "typing",
            "conversation": dm.pk,
            "user": {"id": alice.pk, "name": "Alice Adler"},
        }
        assert await unexpected(a, 0.2) == []
        await a.close()
        await b.close()

    run(scenario)


def test_conversation_changes_reach_the_members(alice: User, bob: User, group: Conversation) -> None:
    async def scenario() -> None:
        b = await connect(bob)
        await sync_to_async(services.conversation_rename)(
            actor=alice, conversation_id=group.pk, name="Launch 2"
        )
        frame = await b.receive_type("conversation")
        assert (frame["change"], frame["name"]) == ("renamed", "Launch 2")
        await b.close()

    run(scenario)


# --- Errors ---------------------------------------------------------------------------------


def test_malformed_frames_are_refused_and_the_socket_keeps_working(
    alice: User, bob: User, dm: Conversation
) -> None:
    bad: list[dict[str, Any] | str] = [
        "not json at all",
        "{'single': 'quotes'}",
        "[1, 2, 3]",
        '"a string"',
        "null",
        "{}",
        {"type": 5},
        {"type": None},
        {"type": "send", "conversation": str(dm.pk), "body": "x"},
        {"type": "send", "conversation": True, "body": "x"},
        {"type": "send", "conversation": dm.pk, "body": 5},
        {"type": "send", "conversation": dm.pk, "body": ["x"]},
        {"type": "send", "conversation": dm.pk, "body": "x", "client_id": 123},
        {"type": "send", "conversation": dm.pk},
        {"type": "edit", "message": -1, "body": "x"},
        {"type": "react", "message": 1.5, "emoji": "👍"},
        {"type": "read", "conversation": [dm.pk]},
        {"type": "resume", "after": "yesterday"},
    ]

    async def scenario() -> None:
        a = await connect(alice)
        for frame in bad:
            await a.send(frame)
            refused = await error(a)
            assert refused["code"] == "malformed", frame
            assert refused["detail"]
        await a.communicator.send_to(bytes_data=b'{"type": "ping"}')
        assert (await error(a))["code"] == "malformed"
        await a.send(send_frame(dm, "still here"))
        assert (await a.receive_type("ack"))["duplicate"] is False
        await a.close()

    run(scenario)
    assert list(Message.objects.values_list("body", flat=True)) == ["still here"]


def test_outsider_gets_not_found_for_everything(
    alice: User, bob: User, charlie: User, dm: Conversation, posted: Message
) -> None:
    before = Event.objects.count()
    attempts: list[dict[str, Any]] = [
        send_frame(dm, "let me in"),
        {"type": "read", "conversation": dm.pk},
        {"type": "read", "conversation": dm.pk, "message": posted.pk},
        {"type": "edit", "message": posted.pk, "body": "mine now"},
        {"type": "delete", "message": posted.pk},
        {"type": "react", "message": posted.pk, "emoji": "👍"},
        {"type": "unreact", "message": posted.pk, "emoji": "👍"},
        {"type": "typing", "conversation": dm.pk},
        send_frame(999_999, "nowhere"),
    ]

    async def scenario() -> None:
        a, b, c = await connect(alice), await connect(bob), await connect(charlie)
        await settle(a, b, c)
        details = []
        for frame in attempts:
            await c.send(frame)
            refused = await error(c)
            assert refused["code"] == "not_found", frame
            details.append(refused["detail"])
        # Not yours reads exactly like missing.
        assert details[0] == details[-1]
        assert await unexpected(a, 0.2) == []
        assert await unexpected(b, 0.1) == []
        await still_works(c)
        for socket in (a, b, c):
            await socket.close()

    run(scenario)
    assert Event.objects.count() == before
    assert list(Message.objects.values_list("body", flat=True)) == ["posted earlier"]
    assert not Reaction.objects.exists()


def test_each_refusal_has_its_code_and_changes_nothing(
    alice: User, bob: User, dm: Conversation, posted: Message
) -> None:
    reused = str(uuid.uuid4())
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"type": "drop_tables"}, "unknown_type"),
        (send_frame(dm, "x" * (64 * 1024 + 1)), "too_large"),
        # Under the limit in characters but over it in bytes.
        (send_frame(dm, "ü" * 40_000), "too_large"),
        ({"type": "edit", "message": posted.pk, "body": "hijacked"}, "forbidden"),
        ({"type": "delete", "message": posted.pk}, "forbidden"),
        (send_frame(dm, "   "), "invalid"),
        (send_frame(dm, "x", client_id="not-a-uuid"), "invalid"),
        ({"type": "react", "message": posted.pk, "emoji": "not an emoji"}, "invalid"),
        (send_frame(dm, "y" * 10_001), "body_too_long"),
        (send_frame(dm, "second", reused), "client_id_conflict"),
    ]

    async def scenario() -> None:
        a, b = await connect(alice), await connect(bob)
        await b.send(send_frame(dm, "first", reused))
        await b.receive_type("ack")
        await a.receive_type("message")
        await settle(a, b)

        for frame, code in refusals:
            await b.send(frame)
            refused = await error(b)
            assert refused["code"] == code, frame
            assert refused["detail"]
            if frame["type"] == "send" and code != "too_large":
                assert refused["client_id"] == frame["client_id"]
        assert await unexpected(a, 0.2) == []
        await still_works(b)
        await b.send(send_frame(dm, "y" * 10_000))
        assert (await b.receive_type("ack"))["seq"] == 3
        await a.close()
        await b.close()

    run(scenario)
    posted.refresh_from_db()
    assert (posted.body, posted.deleted_at) == ("posted earlier", None)
    assert list(Message.objects.values_list("body", flat=True)) == ["posted earlier", "first", "y" * 10_000]
    assert not Reaction.objects.exists()


def test_edit_after_the_window_is_refused(alice: User, posted: Message, settings: Settings) -> None:
    settings.KONTOR_EDIT_WINDOW_SECONDS = 60
    Message.objects.filter(pk=posted.pk).update(created_at=timezone.now() - timedelta(minutes=5))

    async def scenario() -> None:
        a = await connect(alice)
        await a.send({"type": "edit", "message": posted.pk, "body": "too late"})
        assert (await error(a))["code"] == "edit_window_closed"
        await still_works(a)
        await a.close()

    run(scenario)
    posted.refresh_from_db()
    assert posted.body == "posted earlier"


def test_archived_channel_refuses_messages(alice: User, bob: User) -> None:
    channel = services.channel_create(actor=alice, name="old-project", member_ids=[bob.pk])
    services.channel_archive(actor=alice, conversation_id=channel.pk)

    async def scenario() -> None:
        b = await connect(bob)
        await b.send(send_frame(channel, "hello?"))
        assert (await error(b))["code"] == "archived"
        await still_works(b)
        await b.close()

    run(scenario)
    assert not Message.objects.exists()


def test_message_to_a_colleague_who_left_is_refused(alice: User, bob: User, dm: Conversation) -> None:
    User.objects.filter(pk=bob.pk).update(is_active=False)

    async def scenario() -> None:
        a = await connect(alice)
        await a.send(send_frame(dm, "are you there?"))
        assert (await error(a))["code"] == "recipient_inactive"
        await a.close()

    run(scenario)
    assert not Message.objects.exists()


def test_a_burst_of_frames_is_rate_limited_without_closing(
    alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A slow refill, so that a loaded machine handling the burst slowly still sees it limited.
    monkeypatch.setattr(consumers, "BUCKET_RATE", 0.5)

    async def scenario() -> None:
        a = await connect(alice)
        await settle(a)
        for _ in range(40):
            await a.send({"type": "ping"})
        answers = [await receive_besides_presence(a) for _ in range(40)]
        pongs = [f for f in answers if f["type"] == "pong"]
        limited = [f for f in answers if f["type"] == "error" and f["code"] == "rate_limited"]
        assert len(pongs) + len(limited) == 40
        # A burst of 30 passes; then the bucket refills slowly.
        assert len(pongs) >= 30
        assert limited
        assert answers[:30] == [{"type": "pong"}] * 30
        # The socket stays open: once the bucket has refilled, frames are answered again.
        monkeypatch.setattr(consumers, "BUCKET_RATE", 10.0)
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            await a.send({"type": "ping"})
            if (await receive_besides_presence(a))["type"] == "pong":
                break
            assert asyncio.get_running_loop().time() < deadline, "never answered again"
            await asyncio.sleep(0.2)
        await a.close()

    run(scenario)


def test_flooding_with_refused_frames_closes_the_socket(alice: User) -> None:
    async def scenario() -> None:
        a = await connect(alice)
        await settle(a)
        for _ in range(59):
            await a.send("{broken")
        for _ in range(59):
            assert (await error(a))["code"] == "malformed"
        await still_works(a)
        await a.send("{broken")
        assert (await error(a))["code"] == "malformed"
        while (closed := await a.communicator.receive_output(timeout=30))["type"] == "websocket.send":
            assert json.loads(closed["text"])["type"] == "presence"
        assert closed == {"type": "websocket.close", "code": 4429}

    run(scenario)


# --- Idempotency ------------------------------------------------------------------------------


def test_same_client_id_twice_makes_one_message(alice: User, bob: User, dm: Conversation) -> None:
    async def scenario() -> None:
        a, b = await connect(alice), await connect(bob)
        await settle(a, b)
        frame = send_frame(dm, "only once")

        await a.send(frame)
        first = await a.receive_type("ack")
        await a.send(frame)
        second = await a.receive_type("ack")

        assert (first["duplicate"], second["duplicate"]) == (False, True)
        assert (second["message"], second["seq"], second["event"]) == (
            first["message"],
            first["seq"],
            first["event"],
        )
        received = await receive_besides_presence(b)
        assert (received["type"], received["message"]["id"]) == ("message", first["message"])
        assert await unexpected(b, 0.2) == []
        await a.close()
        await b.close()

    run(scenario)
    assert Message.objects.count() == 1
    assert Event.objects.filter(type=Event.Type.MESSAGE).count() == 1


# --- Resume -------------------------------------------------------------------------------------


def test_events_missed_while_away_arrive_once_in_order(alice: User, bob: User, dm: Conversation) -> None:
    async def scenario() -> None:
        b = await connect(bob)
        await message_send(actor=alice, conversation_id=dm.pk, body="seen live")
        last_seen = (await b.receive_type("message"))["event"]
        await b.close()

        missed = [
            await message_send(actor=alice, conversation_id=dm.pk, body=f"missed {i}") for i in range(3)
        ]
        await sync_to_async(services.message_edit)(
            actor=alice, message_id=missed[0].message.pk, body="missed 0!"
        )

        b = await connect(bob)
        await settle(b)
        await b.send({"type": "resume", "after": last_seen})
        replay = await frames_until(b, "resumed")
        await message_send(actor=alice, conversation_id=dm.pk, body="live again")
        live = await b.receive_type("message")

        events = [f for f in replay if "event" in f and f["type"] != "resumed"]
        assert [(f["type"], f["message"]["body"]) for f in events] == [
            ("message", "missed 0!"),
            ("message", "missed 1"),
            ("message", "missed 2"),
            ("message_edited", "missed 0!"),
        ]
        ids = [f["event"] for f in events]
        assert ids == sorted(ids)
        assert ids[:3] == [sent.event_id for sent in missed]
        # The mark: everything up to the journal's head has been sent.
        assert replay[-1] == {"type": "resumed", "after": last_seen, "count": 4, "event": ids[-1]}
        assert live["message"]["body"] == "live again"
        assert live["event"] > ids[-1]
        assert await unexpected(b, 0.2) == []
        await b.close()

    run(scenario)


def test_resume_overlapping_live_events_has_no_duplicate(alice: User, bob: User, dm: Conversation) -> None:
    start = services.message_send(actor=alice, conversation_id=dm.pk, body="before").event_id

    async def scenario() -> None:
        a, b = await connect(alice), await connect(bob)
        await settle(a, b)
        # These arrive live and are also after the resume point.
        for i in range(3):
            await a.send(send_frame(dm, f"overlap {i}"))
            await a.receive_type("ack")
        await b.send({"type": "resume", "after": start})
        frames = await frames_until(b, "resumed")
        frames += await unexpected(b)
        await a.send(send_frame(dm, "after"))
        frames.append(await b.receive_type("message"))

        bodies = [f["message"]["body"] for f in frames if f["type"] == "message"]
        assert bodies == ["overlap 0", "overlap 1", "overlap 2", "after"]
        ids = [f["event"] for f in frames if f["type"] == "message"]
        assert ids == sorted(set(ids))
        assert await unexpected(b, 0.2) == []
        await a.close()
        await b.close()

    run(scenario)


def test_too_many_missed_events_ask_for_a_reload(
    alice: User, bob: User, dm: Conversation, settings: Settings
) -> None:
    settings.KONTOR_RESUME_LIMIT = 10
    start = services.message_send(actor=alice, conversation_id=dm.pk, body="start").event_id
    for i in range(20):
        services.message_send(actor=alice, conversation_id=dm.pk, body=f"missed {i}")

    async def scenario() -> None:
        b = await connect(bob)
        await settle(b)
        await b.send({"type": "resume", "after": start})
        frame = await receive_besides_presence(b)
        assert frame["type"] == "resync"
        assert frame["detail"]
        assert await unexpected(b, 0.2) == []
        await still_works(b)
        await b.close()

    run(scenario)


def test_outsider_cannot_resume_into_a_conversation(
    alice: User, bob: User, charlie: User, dm: Conversation, posted: Message
) -> None:
    services.message_send(actor=bob, conversation_id=dm.pk, body="between us")

    async def scenario() -> None:
        c = await connect(charlie)
        await settle(c)
        await c.send({"type": "resume", "after": 0})
        frames = await frames_until(c, "resumed")
        head = await sync_to_async(selectors.latest_event_id)()
        assert frames == [{"type": "resumed", "after": 0, "count": 0, "event": head}]
        await c.close()

    run(scenario)


# --- Live membership ------------------------------------------------------------------------------


def test_person_added_receives_the_conversation_without_reconnecting(
    alice: User, bob: User, charlie: User
) -> None:
    group = services.group_create(actor=alice, name="Launch", member_ids=[bob.pk])

    async def scenario() -> None:
        c = await connect(charlie)
        await sync_to_async(services.members_add)(
            actor=alice, conversation_id=group.pk, user_ids=[charlie.pk]
        )
        added = await c.receive_type("membership")
        assert (added["conversation"], added["change"], added["user"]["id"]) == (
            group.pk,
            "added",
            charlie.pk,
        )

        await message_send(actor=alice, conversation_id=group.pk, body="welcome, Charlie")
        frame = await c.receive_type("message")
        assert frame["message"]["body"] == "welcome, Charlie"
        await c.send({"type": "typing", "conversation": group.pk})
        await c.send(send_frame(group, "thanks"))
        assert (await c.receive_type("ack"))["seq"] == 2
        await c.close()

    run(scenario)


def test_person_removed_stops_receiving_at_once(
    alice: User, bob: User, charlie: User, group: Conversation
) -> None:
    async def scenario() -> None:
        b, c = await connect(bob), await connect(charlie)
        await settle(b, c)
        await sync_to_async(services.member_remove)(actor=alice, conversation_id=group.pk, user_id=charlie.pk)
        removed = await c.receive_type("membership")
        assert (removed["change"], removed["user"]["id"]) == ("removed", charlie.pk)

        await message_send(actor=alice, conversation_id=group.pk, body="now without Charlie")
        assert (await b.receive_type("message"))["message"]["body"] == "now without Charlie"
        assert await unexpected(c, 0.2) == []
        await c.send(send_frame(group, "wait"))
        assert (await error(c))["code"] == "not_found"
        await c.send({"type": "typing", "conversation": group.pk})
        assert (await error(c))["code"] == "not_found"
        await b.close()
        await c.close()

    run(scenario)


# --- Presence ----------------------------------------------------------------------------------------


def test_presence_online_once_per_person_and_offline_with_the_last_tab(alice: User, bob: User) -> None:
    """Direct-message partners see each other come and go; others are not told."""
    services.direct_open(actor=alice, other_user_id=bob.pk)
    cache.delete_many([f"presence:{alice.pk}", f"presence:{bob.pk}"])

    def presence(user: User, online: bool) -> dict[str, Any]:
        return {"type": "presence", "user": user.pk, "online": online}

    async def scenario() -> None:
        b = await connect(bob)
        first_tab = await connect(alice)
        assert await b.receive_type("presence") == presence(alice, True)

        second_tab = await connect(alice)
        await still_works(second_tab)  # its connect, announcement included, is over
        assert await b.nothing(0.2)
        await second_tab.close()
        assert await b.nothing(0.2)
        await first_tab.close()
        assert await b.receive_type("presence") == presence(alice, False)
        await b.close()

    run(scenario)


def test_presence_is_not_told_to_people_without_a_direct_conversation(alice: User, charlie: User) -> None:
    cache.delete_many([f"presence:{alice.pk}", f"presence:{charlie.pk}"])

    async def scenario() -> None:
        c = await connect(charlie)
        a = await connect(alice)
        await still_works(a)
        assert await c.nothing(0.3)
        await a.close()
        await c.close()

    run(scenario)
