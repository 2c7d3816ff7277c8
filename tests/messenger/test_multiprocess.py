"""Kontor across several daphne processes, through the Redis channel layer.

These run in the PostgreSQL + Redis pass of the test suite (REDIS_URL set);
the in-memory layer of the embedded default cannot span processes.
"""

import asyncio
import json
import random
import uuid
from typing import Any

import pytest
import websockets
from django.conf import settings
from django.test import Client
from websockets.typing import Origin

from accounts.models import User
from messenger import selectors, services
from messenger.models import Message
from tests.factories import make_user
from tests.live import daphne
from tests.wsclient import Tab

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (the PostgreSQL + Redis pass runs it)"),
]


def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def connect(base_url: str, cookie: str) -> Any:
    ws_url = base_url.replace("http://", "ws://") + "/ws/"
    ws = await websockets.connect(
        ws_url,
        origin=Origin(base_url),
        additional_headers={"Cookie": cookie},
        ping_interval=None,
        open_timeout=30,
    )
    hello = json.loads(await asyncio.wait_for(ws.recv(), 30))
    assert hello["type"] == "hello"
    return ws


async def next_of_type(ws: Any, type_: str, timeout: float = 30) -> dict[str, Any]:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame["type"] == type_:
            return frame


def test_people_on_two_server_processes_talk_to_each_other(alice: User, bob: User) -> None:
    conversation = services.direct_open(actor=alice, other_user_id=bob.pk)
    alice_cookie, bob_cookie = session_cookie(alice), session_cookie(bob)

    async def scenario(server_a: str, server_b: str) -> None:
        a = await connect(server_a, alice_cookie)
        b = await connect(server_b, bob_cookie)
        await a.send(json.dumps({"type": "send", "conversation": conversation.pk, "body": "Hallo Bob"}))
        assert (await next_of_type(b, "message"))["message"]["body"] == "Hallo Bob"
        client_id = str(uuid.uuid4())
        await b.send(
            json.dumps(
                {
                    "type": "send",
                    "conversation": conversation.pk,
                    "body": "Hallo Alice",
                    "client_id": client_id,
                }
            )
        )
        reply = await next_of_type(a, "message")
        if reply["message"]["author"]["id"] == alice.pk:  # her own message comes back first
            reply = await next_of_type(a, "message")
        assert reply["message"]["body"] == "Hallo Alice"
        assert reply["message"]["client_id"] == client_id
        await a.close()
        await b.close()

    with daphne("multiprocess-a") as server_a, daphne("multiprocess-b") as server_b:
        asyncio.run(scenario(server_a, server_b))


def test_an_idle_socket_on_redis_still_receives_after_30_seconds(alice: User, bob: User) -> None:
    conversation = services.direct_open(actor=alice, other_user_id=bob.pk)
    bob_cookie = session_cookie(bob)

    async def scenario(server: str) -> None:
        b = await connect(server, bob_cookie)
        await asyncio.sleep(30)
        # The message is sent through another process: the test's own channel layer.
        await asyncio.to_thread(
            services.message_send, actor=alice, conversation_id=conversation.pk, body="Still there?"
        )
        assert (await next_of_type(b, "message"))["message"]["body"] == "Still there?"
        await b.close()

    with daphne("idle-socket") as server:
        asyncio.run(scenario(server))


def test_300_sockets_connect_at_once_and_all_receive_a_message(alice: User, bob: User) -> None:
    channel = services.channel_create(actor=alice, name="all-hands", member_ids=[bob.pk])
    bob_cookie = session_cookie(bob)

    async def scenario(server: str) -> None:
        sockets = await asyncio.gather(*(connect(server, bob_cookie) for _ in range(300)))
        await asyncio.to_thread(
            services.message_send, actor=alice, conversation_id=channel.pk, body="Welcome"
        )
        frames = await asyncio.gather(*(next_of_type(ws, "message", timeout=30) for ws in sockets))
        assert {f["message"]["body"] for f in frames} == {"Welcome"}
        assert len(frames) == 300
        await asyncio.gather(*(ws.close() for ws in sockets))

    with daphne("many-sockets") as server:
        asyncio.run(scenario(server))


def test_tabs_dropped_at_random_moments_show_every_event_exactly_once() -> None:
    """Six colleagues on two server processes; four of them write at once into a
    channel, a group and direct conversations, while their tabs lose the
    connection at random moments and come back on either process. Every tab
    ends up showing every event it may see, once, with nothing left out: its
    resume point is the server's mark, never an id that overtook a slower one."""
    rng = random.Random(1607)
    people = [make_user(email=f"drop{i}@kontor.example", display_name=f"Drop {i}") for i in range(6)]
    channel = services.channel_create(actor=people[0], name="drops", member_ids=[p.pk for p in people[1:]])
    group = services.group_create(actor=people[1], name="Three", member_ids=[people[2].pk, people[3].pk])
    directs = [services.direct_open(actor=people[i], other_user_id=people[i + 1].pk) for i in range(0, 6, 2)]
    rooms = {p.pk: [channel.pk] for p in people}
    for member in people[1:4]:
        rooms[member.pk].append(group.pk)
    for i, direct in zip(range(0, 6, 2), directs, strict=True):
        rooms[people[i].pk].append(direct.pk)
        rooms[people[i + 1].pk].append(direct.pk)
    cookies = [session_cookie(p) for p in people]
    start = selectors.latest_event_id()

    async def scenario(servers: list[str]) -> None:
        tabs = [Tab(servers[i % 2], cookies[i], mark=start) for i in range(len(people))]
        for tab in tabs:
            await tab.connect()

        async def write(index: int) -> None:
            for n in range(20):
                await tabs[index].send_message(rng.choice(rooms[people[index].pk]), f"{index}-{n}")
                await asyncio.sleep(rng.uniform(0, 0.08))

        async def drop_now_and_then() -> None:
            for _ in range(24):
                await asyncio.sleep(rng.uniform(0.02, 0.25))
                tab = rng.choice(tabs)
                await tab.drop()
                tab.base_url = rng.choice(servers)
                await tab.connect()

        await asyncio.gather(*(write(i) for i in range(4)), drop_now_and_then())
        for tab in tabs:
            await tab.wait_until(lambda tab=tab: not tab.pending, timeout=60, what="every send acknowledged")
        head = await asyncio.to_thread(selectors.latest_event_id)
        for tab in tabs:
            await tab.wait_until(lambda tab=tab: tab.mark >= head, timeout=60, what=f"a mark at {head}")

        for person, tab in zip(people, tabs, strict=True):
            visible, _ = await asyncio.to_thread(
                selectors.events_after, user=person, after=start, upto=head, limit=10_000
            )
            assert sorted(tab.shown) == [e.id for e in visible], f"{person} missed or repeated events"
            assert len(tab.shown) == len(set(tab.shown))
            assert tab.resyncs == 0
        assert sum(len(tab.acked) for tab in tabs) == 80
        assert await asyncio.to_thread(Message.objects.filter(body__regex=r"^\d-\d+$").count) == 80
        for tab in tabs:
            await tab.close()

    with daphne("drops-a") as server_a, daphne("drops-b") as server_b:
        asyncio.run(scenario([server_a, server_b]))
