import asyncio
import uuid

import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from messenger import services
from tests.messenger.conftest import open_socket

pytestmark = pytest.mark.django_db(transaction=True)


def test_message_reaches_the_other_member_and_the_sender_gets_an_ack(alice: User, bob: User) -> None:
    conversation = services.direct_open(actor=alice, other_user_id=bob.pk)

    async def scenario() -> None:
        _, a = await open_socket(alice)
        _, b = await open_socket(bob)
        await a.receive_type("hello")
        await b.receive_type("hello")
        client_id = str(uuid.uuid4())
        await a.send(
            {"type": "send", "conversation": conversation.pk, "body": "Hi *Bob*", "client_id": client_id}
        )
        ack = await a.receive_type("ack")
        got = await b.receive_type("message")
        assert ack["client_id"] == client_id
        assert got["message"]["id"] == ack["message"]
        assert got["message"]["html"] == "<p>Hi <em>Bob</em></p>"
        assert got["event"] == ack["event"]
        await a.close()
        await b.close()

    asyncio.run(scenario())


def test_resume_replays_missed_events_once_in_order(alice: User, bob: User) -> None:
    conversation = services.direct_open(actor=alice, other_user_id=bob.pk)
    first = services.message_send(actor=alice, conversation_id=conversation.pk, body="one")
    for body in ("two", "three", "four"):
        services.message_send(actor=alice, conversation_id=conversation.pk, body=body)

    async def scenario() -> None:
        _, b = await open_socket(bob)
        await b.receive_type("hello")
        await b.send({"type": "resume", "after": first.event_id})
        bodies = [(await b.receive_type("message"))["message"]["body"] for _ in range(3)]
        done = await b.receive_type("resumed")
        assert bodies == ["two", "three", "four"]
        assert done["count"] == 3
        await sync_to_async(services.message_send)(actor=alice, conversation_id=conversation.pk, body="five")
        live = await b.receive_type("message")
        assert live["message"]["body"] == "five"
        await b.close()

    asyncio.run(scenario())
