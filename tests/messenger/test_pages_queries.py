"""Loading a conversation, its older messages or the sidebar takes the same
number of queries however long the conversation is."""

from typing import Any

import pytest
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.template import engines, loader
from django.template.context_processors import csrf
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pytest_django import DjangoAssertNumQueries

from accounts.models import User
from messenger import services, views
from messenger.models import Conversation, Message

pytestmark = pytest.mark.django_db

# Session, user, roles (layout); the journal position; the page's membership,
# messages, members, reactions, mentions and reactors; the retention policy
# (for the recording notice); the sidebar's memberships and direct partners.
CONVERSATION_PAGE_QUERIES = 13
# Session, user, roles (the context processor); membership, messages, members,
# reactions, mentions and reactors. No layout, no sidebar.
OLDER_MESSAGES_QUERIES = 9
# Session, user, roles; the sidebar's memberships and its direct partners.
SIDEBAR_QUERIES = 5


def _fill(conversation: Conversation, people: list[User], count: int) -> None:
    """``count`` messages by turns, with replies, reactions and mentions among them."""
    previous = None
    for n in range(count):
        author = people[n % len(people)]
        other = people[(n + 1) % len(people)]
        body = f"Message {n} for @{other.handle}" if n % 7 == 0 else f"Message {n}"
        sent = services.message_send(
            actor=author,
            conversation_id=conversation.pk,
            body=body,
            reply_to_id=previous if n % 5 == 4 else None,
        )
        if n % 3 == 0:
            services.reaction_set(actor=other, message_id=sent.message.pk, emoji="👍")
        previous = sent.message.pk


def _conversations(alice: User, bob: User, charlie: User) -> list[Conversation]:
    return [
        services.channel_create(actor=alice, name="busy", member_ids=[bob.pk, charlie.pk]),
        services.group_create(actor=alice, name="Trio", member_ids=[bob.pk, charlie.pk]),
        services.direct_open(actor=alice, other_user_id=bob.pk),
    ]


@pytest.mark.parametrize("count", [5, 60])
def test_conversation_page_queries_do_not_grow_with_its_length(
    client: Client,
    alice: User,
    bob: User,
    charlie: User,
    count: int,
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    channel, *others = _conversations(alice, bob, charlie)
    for conversation in [channel, *others]:
        _fill(conversation, [alice, bob, charlie] if conversation != others[-1] else [alice, bob], count)
    client.force_login(alice)
    client.get(channel.get_absolute_url())  # marks it read; a first request may refresh the session

    with django_assert_num_queries(CONVERSATION_PAGE_QUERIES):
        response = client.get(channel.get_absolute_url())

    assert response.status_code == 200
    assert response.content.decode().count('<article id="m') == min(count, 50)


@pytest.mark.parametrize("count", [60, 120])
def test_older_messages_queries_do_not_grow(
    client: Client,
    alice: User,
    bob: User,
    charlie: User,
    count: int,
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    channel = services.channel_create(actor=alice, name="busy", member_ids=[bob.pk, charlie.pk])
    _fill(channel, [alice, bob, charlie], count)
    client.force_login(alice)
    client.get(channel.get_absolute_url())

    with django_assert_num_queries(OLDER_MESSAGES_QUERIES):
        response = client.get(f"{channel.get_absolute_url()}?before={count - 40}", HTTP_HX_REQUEST="true")

    assert response.status_code == 200


def test_sidebar_queries_do_not_grow_with_messages_or_conversations(
    client: Client, alice: User, bob: User, charlie: User, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    conversations = _conversations(alice, bob, charlie)
    client.force_login(alice)
    client.get("/sidebar/")

    with django_assert_num_queries(SIDEBAR_QUERIES):
        client.get("/sidebar/")

    for conversation in conversations:
        _fill(conversation, [bob, alice], 40)
    for n in range(5):
        services.group_create(actor=bob, name=f"Group {n}", member_ids=[alice.pk])

    with django_assert_num_queries(SIDEBAR_QUERIES):
        page = client.get("/sidebar/").content.decode()
    assert page.count('class="side-item') >= 3 + 5


def test_the_sidebar_costs_every_page_the_same(client: Client, alice: User, bob: User, charlie: User) -> None:
    client.force_login(alice)
    client.get("/people/")
    with CaptureQueriesContext(connection) as empty:
        client.get("/people/")
    for conversation in _conversations(alice, bob, charlie):
        _fill(conversation, [bob, alice], 20)
    with CaptureQueriesContext(connection) as busy:
        client.get("/people/")

    # Only the direct partners' query joins in once there is a direct conversation.
    assert len(busy.captured_queries) == len(empty.captured_queries) + 1


@pytest.fixture
def drawing_without_queries(
    monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: DjangoAssertNumQueries
) -> list[str]:
    """Pages of the messenger's views drawn in two steps: the view's context and
    the context processors' first (they may query), then the template, which
    must not make a single query (no lazy query in a template or a tag)."""
    drawn: list[str] = []

    def render(
        request: HttpRequest, template_name: str, context: dict[str, Any] | None = None, status: int = 200
    ) -> HttpResponse:
        flat: dict[str, Any] = {"csrf_token": csrf(request)["csrf_token"]}
        for processor in engines["django"].engine.template_context_processors:  # type: ignore[attr-defined]
            flat.update(processor(request))
        flat.update(context or {})
        template = loader.get_template(template_name)
        with django_assert_num_queries(0):
            html = template.render(flat)
        drawn.append(template_name)
        return HttpResponse(html, status=status)

    monkeypatch.setattr(views, "render", render)
    return drawn


def test_drawing_the_conversation_page_makes_no_query(
    client: Client, alice: User, bob: User, charlie: User, drawing_without_queries: list[str]
) -> None:
    channel, *others = _conversations(alice, bob, charlie)
    for conversation in [channel, *others]:
        _fill(conversation, [alice, bob, charlie] if conversation != others[-1] else [alice, bob], 12)
    mine = Message.objects.filter(conversation=channel, author=alice).latest("seq")
    services.message_edit(actor=alice, message_id=mine.pk, body="Edited")
    client.force_login(alice)

    response = client.get(channel.get_absolute_url())

    assert response.status_code == 200
    assert drawing_without_queries == ["messenger/conversation.html"]
    page = response.content.decode()
    assert page.count('<article id="m') == 12 and "(edited)" in page and 'class="side-item' in page


def test_drawing_the_sidebar_makes_no_query(
    client: Client, alice: User, bob: User, charlie: User, drawing_without_queries: list[str]
) -> None:
    for conversation in _conversations(alice, bob, charlie):
        _fill(conversation, [bob, alice], 5)
    client.force_login(alice)

    response = client.get("/sidebar/")

    assert response.status_code == 200
    assert drawing_without_queries == ["messenger/_sidebar_fragment.html"]
    assert response.content.decode().count('<a class="side-item') == 3
