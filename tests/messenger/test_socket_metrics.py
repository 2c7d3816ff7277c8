"""What the websocket side tells Prometheus: sockets open, sends by outcome, delivery lag."""

import asyncio
import uuid

import pytest
from prometheus_client import REGISTRY

from accounts.models import User
from messenger.models import Conversation
from tests.messenger.conftest import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_channel_layer")]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_sockets_sends_and_deliveries_are_counted(alice: User, bob: User, dm: Conversation) -> None:
    before_open = sample("kontor_sockets_open")
    before_ok = sample("kontor_sends_total", outcome="ok")
    before_duplicate = sample("kontor_sends_total", outcome="duplicate")
    before_refused = sample("kontor_sends_total", outcome="refused")
    before_delivered = sample("kontor_delivery_lag_seconds_count")
    frame = {"type": "send", "conversation": dm.pk, "body": "counted", "client_id": str(uuid.uuid4())}

    async def scenario() -> None:
        _, a = await open_socket(alice)
        _, b = await open_socket(bob)
        await a.receive_type("hello", timeout=30)
        await b.receive_type("hello", timeout=30)
        assert sample("kontor_sockets_open") == before_open + 2
        await a.send(frame)
        await a.receive_type("ack", timeout=30)
        await b.receive_type("message", timeout=30)
        await a.send(frame)  # the same client_id again
        assert (await a.receive_type("ack", timeout=30))["duplicate"] is True
        await a.send({**frame, "conversation": 999_999, "client_id": str(uuid.uuid4())})
        assert (await a.receive_type("error", timeout=30))["code"] == "not_found"
        await a.close()
        await b.close()

    asyncio.run(scenario())
    assert sample("kontor_sockets_open") == before_open
    assert sample("kontor_sends_total", outcome="ok") == before_ok + 1
    assert sample("kontor_sends_total", outcome="duplicate") == before_duplicate + 1
    assert sample("kontor_sends_total", outcome="refused") == before_refused + 1
    # Alice's and Bob's sockets each got the message live.
    assert sample("kontor_delivery_lag_seconds_count") >= before_delivered + 2
