"""A tab's resume point and the live stream's gaps (docs/protocol.md, "Resuming").

The live stream may deliver events out of id order (two server processes) or
not at all (a full or restarted channel layer). A socket must never tell its tab
a mark above an event it has not sent, must notice what the stream lost and send
it from the journal, and a hostile frame must not take the socket (or the
person's presence) down with it.
"""

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import OperationalError
from pytest_django import Settings

from accounts.models import User
from messenger import consumers, events, presence, selectors, services
from messenger.models import Conversation, Message
from tests.messenger.conftest import Socket, open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_channel_layer")]

DEADLINE = 30.0
message_send = sync_to_async(services.message_send)
latest_event_id = sync_to_async(selectors.latest_event_id)


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


async def connect(user: User) -> Socket:
    connected, socket = await open_socket(user)
    assert connected
    await socket.receive_type("hello", timeout=DEADLINE)
    return socket


async def resumed(socket: Socket, after: int) -> dict[str, Any]:
    await socket.send({"type": "resume", "after": after})
    return await socket.receive_type("resumed", timeout=DEADLINE)


class Seen:
    """What a tab shows: journal events once each, and the marks it was given."""

    def __init__(self) -> None:
        self.events: list[int] = []
        self.bodies: dict[int, str] = {}
        self.mark = 0
        self.frames: list[dict[str, Any]] = []

    def take(self, frame: dict[str, Any]) -> None:
        self.frames.append(frame)
        if frame["type"] in ("synced", "resumed"):
            # A mark may never promise an event the tab has not received.
            self.mark = max(self.mark, frame["event"])
        elif "event" in frame and frame["type"] != "hello":
            self.events.append(frame["event"])
            if frame["type"] == "message":
                self.bodies[frame["event"]] = frame["message"]["body"]


async def read_until_synced(socket: Socket, seen: Seen, upto: int) -> None:
    """Read frames until the socket's mark covers ``upto``."""
    deadline = time.monotonic() + DEADLINE
    while seen.mark < upto:
        left = deadline - time.monotonic()
        assert left > 0, f"no mark at {upto} within {DEADLINE} s; frames: {seen.frames[-8:]}"
        seen.take(await socket.receive(timeout=left))


IN_MEMORY = "channels.layers.InMemoryChannelLayer"


@pytest.fixture
def in_memory_layer(settings: Settings) -> None:
    """Tests that reach into the layer's groups or reads use the in-memory one (the
    Redis layer's behaviour under a restart is the fault drill's, bench/faults.py)."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": IN_MEMORY, "CONFIG": {"capacity": 10_000}}}


@pytest.fixture
def dropped() -> Iterator[set[str]]:
    """Bodies whose broadcast the channel layer 'loses' (committed, never delivered)."""
    bodies: set[str] = set()
    original = events._send

    def lossy(group: str, message: dict[str, Any]) -> None:
        # A journal event travels encoded once for every socket ("text").
        payload = json.loads(message["text"]) if "text" in message else message.get("payload") or {}
        body = (
            (payload.get("message") or {}).get("body") if isinstance(payload.get("message"), dict) else None
        )
        if body in bodies:
            return
        original(group, message)

    events._send = lossy
    yield bodies
    events._send = original


def test_an_event_the_stream_lost_arrives_from_the_journal_before_the_mark_passes_it(
    alice: User, bob: User, dm: Conversation, dropped: set[str]
) -> None:
    """Bob's socket gets Alice's later message live while her earlier one is lost
    on the way (another process, a full layer): the earlier one still reaches him,
    and his tab is never told a mark above it before it did."""
    dropped.add("lost on the way")

    async def scenario() -> None:
        b = await connect(bob)
        seen = Seen()
        seen.take(await resumed(b, await latest_event_id()))
        lost = await message_send(actor=alice, conversation_id=dm.pk, body="lost on the way")
        later = await message_send(actor=alice, conversation_id=dm.pk, body="arrives live")
        await read_until_synced(b, seen, later.event_id)

        assert sorted(seen.events) == [lost.event_id, later.event_id]
        assert seen.bodies[lost.event_id] == "lost on the way"
        assert any(f["type"] == "synced" for f in seen.frames)
        for index, frame in enumerate(seen.frames):
            if frame["type"] == "synced" and frame["event"] >= lost.event_id:
                assert lost.event_id in {f.get("event") for f in seen.frames[:index]}
        await b.close()

    run(scenario)


def test_the_sender_s_ack_makes_the_socket_check_what_the_stream_owes(
    alice: User, bob: User, dm: Conversation, dropped: set[str]
) -> None:
    """Acks keep arriving while others' events are lost (the 77 s stall): the ack's
    event id tells the socket the journal moved, so it fetches what it missed."""
    dropped.add("bob's words, lost")

    async def scenario() -> None:
        a = await connect(alice)
        seen = Seen()
        seen.take(await resumed(a, await latest_event_id()))
        lost = await message_send(actor=bob, conversation_id=dm.pk, body="bob's words, lost")
        await a.send(
            {"type": "send", "conversation": dm.pk, "body": "alice writes", "client_id": str(uuid.uuid4())}
        )
        ack = await a.receive_type("ack", timeout=DEADLINE)
        await read_until_synced(a, seen, ack["event"])
        assert lost.event_id in seen.events
        await a.close()

    run(scenario)


def test_a_socket_whose_events_all_vanished_is_told_by_its_sweep(
    alice: User, bob: User, dm: Conversation, dropped: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing arrives live at all (a restarted layer forgot the socket's groups):
    the periodic check against the journal still brings every message."""
    monkeypatch.setattr(consumers, "SYNC_SWEEP", 0.5)
    bodies = [f"vanished {i}" for i in range(3)]
    dropped.update(bodies)

    async def scenario() -> None:
        b = await connect(bob)
        seen = Seen()
        seen.take(await resumed(b, await latest_event_id()))
        sent = [await message_send(actor=alice, conversation_id=dm.pk, body=body) for body in bodies]
        await read_until_synced(b, seen, sent[-1].event_id)
        assert seen.events == [s.event_id for s in sent]
        await b.close()

    run(scenario)


def test_a_tiny_layer_capacity_loses_nothing_a_tab_shows(
    alice: User, bob: User, dm: Conversation, settings: Settings
) -> None:
    """A layer that holds two messages per socket drops most of a burst of 40: the
    tab still shows all 40, each once."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": IN_MEMORY, "CONFIG": {"capacity": 2}}}

    async def scenario() -> None:
        b = await connect(bob)
        seen = Seen()
        seen.take(await resumed(b, await latest_event_id()))

        def burst() -> list[int]:
            return [
                services.message_send(actor=alice, conversation_id=dm.pk, body=f"burst {i}").event_id
                for i in range(40)
            ]

        sent = await sync_to_async(burst)()
        await read_until_synced(b, seen, sent[-1])
        assert sorted(seen.events) == sent
        assert len(seen.events) == len(set(seen.events))
        await b.close()

    run(scenario)


def test_a_resume_after_the_mark_repeats_nothing_the_old_socket_sent(
    alice: User, bob: User, dm: Conversation
) -> None:
    async def scenario() -> None:
        b = await connect(bob)
        seen = Seen()
        seen.take(await resumed(b, await latest_event_id()))
        first = await message_send(actor=alice, conversation_id=dm.pk, body="before the drop")
        await read_until_synced(b, seen, first.event_id)
        await b.close()

        second = await message_send(actor=alice, conversation_id=dm.pk, body="while away")
        b = await connect(bob)
        await b.send({"type": "resume", "after": seen.mark})
        while True:
            frame = await b.receive(timeout=DEADLINE)
            seen.take(frame)
            if frame["type"] == "resumed":
                break
        assert seen.events == [first.event_id, second.event_id]
        assert seen.mark >= second.event_id
        await b.close()

    run(scenario)


# --- Hostile frames and presence -------------------------------------------------------


def test_a_deeply_nested_frame_is_malformed_and_the_socket_lives_on(
    alice: User, bob: User, dm: Conversation
) -> None:
    cache.clear()
    nested = '{"type": "send", "x": ' + "[" * 5000 + "]" * 5000 + "}"
    assert len(nested) < consumers.MAX_FRAME_BYTES

    async def scenario() -> None:
        b = await connect(bob)
        a = await connect(alice)
        await a.send(nested)
        error = await a.receive_type("error", timeout=DEADLINE)
        assert error["code"] == "malformed"
        assert "nested" in error["detail"]
        await a.send({"type": "ping"})
        assert (await a.receive_type("pong", timeout=DEADLINE))["type"] == "pong"
        assert await sync_to_async(presence.online_user_ids)([alice.pk]) == {alice.pk}
        await a.close()
        offline = await b.receive_type("presence", timeout=DEADLINE)
        while offline["online"]:
            offline = await b.receive_type("presence", timeout=DEADLINE)
        assert offline == {"type": "presence", "user": alice.pk, "online": False}
        assert await sync_to_async(presence.online_user_ids)([alice.pk]) == set()
        await b.close()

    run(scenario)


def test_a_send_the_database_failed_is_refused_as_unavailable_and_works_when_sent_again(
    alice: User, dm: Conversation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost database connection is no reason to drop the socket: the tab is told
    nothing was stored and sends the same frame again."""
    original = services.message_send
    failures = [OperationalError("server closed the connection unexpectedly")]

    def flaky(**kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return original(**kwargs)

    monkeypatch.setattr(services, "message_send", flaky)
    frame = {"type": "send", "conversation": dm.pk, "body": "try again", "client_id": str(uuid.uuid4())}

    async def scenario() -> None:
        a = await connect(alice)
        await a.send(frame)
        error = await a.receive_type("error", timeout=DEADLINE)
        assert (error["code"], error["client_id"]) == ("unavailable", frame["client_id"])
        assert not await sync_to_async(Message.objects.filter(body="try again").exists)()
        await a.send(frame)
        ack = await a.receive_type("ack", timeout=DEADLINE)
        assert ack["client_id"] == frame["client_id"]
        await a.close()

    run(scenario)


def test_a_crashing_handler_releases_the_socket_s_presence(
    alice: User, bob: User, dm: Conversation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in handling a group message closes the socket, and the person does not
    stay 'online' for hours: what the socket held is given back on that path too."""
    cache.clear()

    original = consumers.ChatConsumer.typing_notice

    async def broken(self: consumers.ChatConsumer, message: dict[str, Any]) -> None:
        if self.user.pk == alice.pk:
            raise RuntimeError("a bug")
        await original(self, message)

    monkeypatch.setattr(consumers.ChatConsumer, "typing_notice", broken)

    async def scenario() -> None:
        a = await connect(alice)
        b = await connect(bob)
        assert await sync_to_async(presence.online_user_ids)([alice.pk, bob.pk]) == {alice.pk, bob.pk}
        await b.send({"type": "typing", "conversation": dm.pk})
        output = await a.communicator.receive_output(timeout=DEADLINE)
        while output["type"] != "websocket.close":
            output = await a.communicator.receive_output(timeout=DEADLINE)
        assert output["code"] == 1011
        assert await sync_to_async(presence.online_user_ids)([alice.pk, bob.pk]) == {bob.pk}
        await b.close()

    run(scenario)


def test_presence_of_a_socket_that_vanished_without_a_goodbye_expires(
    alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server process killed with its sockets: their entries are not renewed, so
    the person shows offline within the entry's lifetime, even while another tab
    of theirs keeps beating."""
    cache.clear()
    now = [1_000_000.0]
    monkeypatch.setattr(presence.time, "time", lambda: now[0])
    assert presence.presence_connect(user_id=alice.pk, socket="killed-process")
    assert not presence.presence_connect(user_id=alice.pk, socket="open-tab")
    for _ in range(10):  # the open tab beats; the killed one never does again
        now[0] += presence.HEARTBEAT
        presence.presence_heartbeat(user_id=alice.pk, socket="open-tab")
    assert presence.online_user_ids([alice.pk]) == {alice.pk}
    assert presence.presence_disconnect(user_id=alice.pk, socket="open-tab")
    assert presence.online_user_ids([alice.pk]) == set()

    assert presence.presence_connect(user_id=alice.pk, socket="killed-again")
    now[0] += presence.ENTRY_TTL + 1
    assert presence.online_user_ids([alice.pk]) == set()


def test_presence_entries_are_written_per_socket(alice: User) -> None:
    cache.clear()
    assert presence.presence_connect(user_id=alice.pk, socket="one")
    assert not presence.presence_connect(user_id=alice.pk, socket="two")
    assert not presence.presence_disconnect(user_id=alice.pk, socket="one")
    assert not presence.presence_disconnect(user_id=alice.pk, socket="one")  # twice counts once
    assert presence.presence_disconnect(user_id=alice.pk, socket="two")
    assert json.dumps(sorted(presence.online_user_ids([alice.pk]))) == "[]"


def test_a_layer_that_forgot_the_socket_s_groups_gets_them_back(
    alice: User, bob: User, dm: Conversation, monkeypatch: pytest.MonkeyPatch, in_memory_layer: None
) -> None:
    """A restarted Redis forgets who listens to what: once the journal check finds
    the stream lost something, the socket joins its groups again."""
    monkeypatch.setattr(consumers, "SYNC_SWEEP", 0.5)

    async def scenario() -> None:
        b = await connect(bob)
        seen = Seen()
        seen.take(await resumed(b, await latest_event_id()))
        layer = get_channel_layer()
        layer.groups.clear()  # what a Redis restart does to group memberships
        first = await message_send(actor=alice, conversation_id=dm.pk, body="into the void")
        await read_until_synced(b, seen, first.event_id)
        assert events.conversation_group(dm.pk) in layer.groups
        # Joined again: the next message travels the live stream to the socket.
        second = await message_send(actor=alice, conversation_id=dm.pk, body="heard live")
        frame = await b.receive_type("message", timeout=DEADLINE)
        assert frame["event"] == second.event_id
        await b.close()

    run(scenario)


def test_a_socket_whose_channel_layer_read_fails_gives_back_what_it_held(
    alice: User, bob: User, dm: Conversation, in_memory_layer: None
) -> None:
    """A Redis restart fails the socket's read from the layer, outside every
    handler: the socket still leaves its groups, its presence and its journal
    sweep behind it (a lingering sweep kept reading the journal for a dead tab)."""
    cache.clear()
    layer = get_channel_layer()
    original = layer.receive
    broken = asyncio.Event()

    async def receive(channel: str) -> Any:
        read = asyncio.ensure_future(original(channel))
        fail = asyncio.ensure_future(broken.wait())
        done, _ = await asyncio.wait({read, fail}, return_when=asyncio.FIRST_COMPLETED)
        if fail in done:
            read.cancel()
            raise ConnectionError("Error while reading from the layer: connection reset")
        fail.cancel()
        return read.result()

    layer.receive = receive
    sweeps: list[asyncio.Task[Any]] = []

    async def scenario() -> None:
        a = await connect(alice)
        await resumed(a, await latest_event_id())
        assert await sync_to_async(presence.online_user_ids)([alice.pk]) == {alice.pk}
        sweeps.extend(t for t in asyncio.all_tasks() if "_sweep" in repr(t.get_coro()))
        assert sweeps
        broken.set()
        with contextlib.suppress(Exception):
            await a.communicator.wait(timeout=DEADLINE)
        await wait_for(lambda: all(t.done() for t in sweeps), "the sweep to stop")
        await wait_for(lambda: not any(layer.groups.values()), "the socket to leave its groups")
        assert await sync_to_async(presence.online_user_ids)([alice.pk]) == set()

    run(scenario)


async def wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def test_the_sweep_renews_the_sockets_presence_and_a_live_check_does_not(
    alice: User, bob: User, dm: Conversation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quiet tab stays online: its sweep renews its presence entry in the same
    hop as the journal check. The checks after live events leave presence alone
    (they come often; the entry needs a beat every HEARTBEAT seconds, not more)."""
    # The live check runs at once; the first sweep comes well after it, even on
    # a loaded machine (a sweep first would move the mark past the message).
    monkeypatch.setattr(consumers, "SYNC_SWEEP", 15.0)
    monkeypatch.setattr(consumers, "SYNC_DELAY", 0.0)
    checks: list[tuple[bool, bool]] = []  # (up to the head, presence renewed)
    beats: list[str] = []
    sync_frames, renew = consumers._sync_frames, presence.presence_heartbeat

    def sync(
        user: User, socket: str, after: int, upto: int | None, delivered: set[int], heartbeat: bool
    ) -> Any:
        before = len(beats)
        result = sync_frames(user, socket, after, upto, delivered, heartbeat)
        checks.append((upto is None, len(beats) > before))
        return result

    def counted(*, user_id: int, socket: str) -> None:
        beats.append(socket)
        renew(user_id=user_id, socket=socket)

    monkeypatch.setattr(consumers, "_sync_frames", sync)
    monkeypatch.setattr(presence, "presence_heartbeat", counted)

    async def scenario() -> None:
        b = await connect(bob)
        seen = Seen()
        seen.take(await resumed(b, await latest_event_id()))
        sent = await message_send(actor=alice, conversation_id=dm.pk, body="checked after it arrives")
        await read_until_synced(b, seen, sent.event_id)
        deadline = time.monotonic() + 60
        while not ((True, True) in checks and (False, False) in checks):
            assert time.monotonic() < deadline, checks
            await asyncio.sleep(0.05)
        await b.close()

    run(scenario)
    assert (True, False) not in checks and (False, True) not in checks
