"""The socket's hot path costs the same number of queries however long the
conversation is and however many events the journal holds."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from messenger import selectors, services
from messenger.models import Conversation

pytestmark = pytest.mark.django_db


def _send_queries(conversation: Conversation, author: User) -> int:
    with CaptureQueriesContext(connection) as captured:
        services.message_send(actor=author, conversation_id=conversation.pk, body="Another one, @bob")
    return len(captured)


def test_sending_costs_the_same_in_a_short_and_a_long_conversation(alice: User, bob: User) -> None:
    conversation = services.direct_open(actor=alice, other_user_id=bob.pk)
    short = _send_queries(conversation, alice)
    for n in range(60):
        services.message_send(actor=bob if n % 2 else alice, conversation_id=conversation.pk, body=f"m{n}")
    long = _send_queries(conversation, alice)

    assert short == long
    # 17 on PostgreSQL (the journal's advisory lock), one of them the queued mail notice of bob.
    assert long <= 17


def test_resume_costs_the_same_for_few_and_many_events(alice: User, bob: User) -> None:
    conversation = services.direct_open(actor=alice, other_user_id=bob.pk)
    start = selectors.latest_event_id()
    services.message_send(actor=alice, conversation_id=conversation.pk, body="one")
    with CaptureQueriesContext(connection) as few:
        events, _ = selectors.events_after(user=bob, after=start, limit=500)
        [list(e.message.mentions.all()) for e in events if e.message]
    for n in range(40):
        services.message_send(actor=alice, conversation_id=conversation.pk, body=f"@bob {n}")
    with CaptureQueriesContext(connection) as many:
        events, _ = selectors.events_after(user=bob, after=start, limit=500)
        [list(e.message.mentions.all()) for e in events if e.message]

    assert len(events) == 41
    assert len(few) == len(many)
