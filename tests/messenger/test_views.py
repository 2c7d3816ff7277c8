"""The messenger's pages, without JavaScript: plain GETs and form posts.

alice and bob share a channel (#project) and a direct conversation; charlie is
an outsider to both.
"""

import re
import uuid
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User
from messenger import services
from messenger.models import Conversation, Membership, Message, Reaction
from messenger.selectors import latest_event_id

pytestmark = pytest.mark.django_db


@pytest.fixture
def channel(alice: User, bob: User) -> Conversation:
    return services.channel_create(actor=alice, name="project", topic="Launch plan", member_ids=[bob.pk])


@pytest.fixture
def message(channel: Conversation, alice: User) -> Message:
    return services.message_send(actor=alice, conversation_id=channel.pk, body="Kick-off at *nine*").message


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def as_alice(alice: User) -> Client:
    return _client(alice)


@pytest.fixture
def as_bob(bob: User) -> Client:
    return _client(bob)


@pytest.fixture
def as_charlie(charlie: User) -> Client:
    return _client(charlie)


def _page(response: object) -> str:
    return response.content.decode()  # type: ignore[attr-defined]


# --- Every page renders for a member ---------------------------------------


def test_member_pages_render(
    as_alice: Client, channel: Conversation, message: Message, bob: User, alice: User
) -> None:
    direct = services.direct_open(actor=alice, other_user_id=bob.pk)
    pages = [
        reverse("messenger:home"),
        reverse("messenger:conversation", args=[channel.pk]),
        reverse("messenger:conversation", args=[direct.pk]),
        f"{reverse('messenger:conversation', args=[channel.pk])}?around={message.seq}",
        f"{reverse('messenger:conversation', args=[channel.pk])}?reply_to={message.pk}",
        reverse("messenger:settings", args=[channel.pk]),
        reverse("messenger:settings", args=[direct.pk]),
        reverse("messenger:people"),
        f"{reverse('messenger:people')}?q=bob",
        reverse("messenger:channels"),
        reverse("messenger:channel_new"),
        reverse("messenger:group_new"),
        f"{reverse('messenger:search')}?q=kick",
        reverse("messenger:message_edit", args=[message.pk]),
        reverse("messenger:message_delete", args=[message.pk]),
        reverse("messenger:sidebar"),
    ]
    for path in pages:
        response = as_alice.get(path)
        assert response.status_code == 200, path


def test_conversation_page_shows_header_messages_and_sidebar(
    as_bob: Client, channel: Conversation, message: Message, alice: User, bob: User
) -> None:
    reply = services.message_send(
        actor=bob, conversation_id=channel.pk, body="See you there", reply_to_id=message.pk
    ).message
    services.reaction_set(actor=bob, message_id=message.pk, emoji="👍")
    services.message_edit(actor=bob, message_id=reply.pk, body="See you there!")

    page = _page(as_bob.get(channel.get_absolute_url()))

    assert "Launch plan" in page  # the topic
    assert "data-member-count>2<" in page
    assert "<p>Kick-off at <em>nine</em></p>" in page
    assert 'class="msg__quote"' in page and "Kick-off at nine" in page  # the reply's quote
    assert "(edited)" in page
    assert 'class="reaction is-mine"' in page and f'data-users="{bob.pk}"' in page
    assert 'aria-current="page"' in page  # the open conversation in the sidebar
    # The row of a send in flight (live rows come drawn by the server: no message skeleton).
    assert 'id="pending-template"' in page and 'id="chat-data"' in page
    assert 'id="message-template"' not in page
    assert f'data-event="{latest_event_id()}"' in page  # the socket resumes from here


def test_deleted_message_is_a_tombstone(
    as_bob: Client, channel: Conversation, message: Message, alice: User
) -> None:
    services.message_delete(actor=alice, message_id=message.pk)

    page = _page(as_bob.get(channel.get_absolute_url()))

    assert "This message was deleted." in page
    assert "Kick-off" not in page


def test_mentions_of_the_viewer_are_highlighted(
    as_bob: Client, channel: Conversation, alice: User, bob: User
) -> None:
    services.message_send(actor=alice, conversation_id=channel.pk, body=f"@{bob.handle} please check")

    page = _page(as_bob.get(channel.get_absolute_url()))

    assert "msg--mention" in page


def test_sidebar_lists_sections_with_unread_and_mention_badges(
    as_bob: Client, channel: Conversation, alice: User, bob: User
) -> None:
    services.message_send(actor=alice, conversation_id=channel.pk, body="one")
    services.message_send(actor=alice, conversation_id=channel.pk, body=f"@{bob.handle} two")
    services.group_create(actor=alice, name="Lunch", member_ids=[bob.pk])
    services.direct_open(actor=alice, other_user_id=bob.pk)

    page = _page(as_bob.get(reverse("messenger:people")))

    for section in ("Channels", "Groups", "Direct messages", "New channel", "New group", "Browse channels"):
        assert section in page
    item = re.search(rf'data-conversation="{channel.pk}".*?</a>', page, re.S)
    assert item is not None
    assert "is-unread" in page
    assert re.search(r"data-unread><span data-n>2<", item.group(0))
    assert re.search(r'data-mentions><span aria-hidden="true">@</span><span data-n>1<', item.group(0))


def test_reading_the_latest_page_marks_the_conversation_read(
    as_bob: Client, channel: Conversation, message: Message, bob: User
) -> None:
    as_bob.get(channel.get_absolute_url())

    assert Membership.objects.get(conversation=channel, user=bob).last_read_seq == message.seq


def test_older_messages_come_as_a_partial_for_htmx_and_as_a_page_without_script(
    as_alice: Client, channel: Conversation, alice: User
) -> None:
    for n in range(60):
        services.message_send(actor=alice, conversation_id=channel.pk, body=f"message number {n}")
    url = channel.get_absolute_url()

    latest = _page(as_alice.get(url))
    assert "message number 59" in latest and "message number 9<" not in latest
    assert 'hx-get="' in latest and "?before=11" in latest  # the sentinel for seq 11

    partial = as_alice.get(f"{url}?before=11", HTTP_HX_REQUEST="true")
    body = _page(partial)
    assert "<html" not in body
    assert "message number 0<" in body and "message number 9<" in body
    assert "message number 10<" not in body

    full = _page(as_alice.get(f"{url}?before=11"))
    assert "<html" in full and "Jump to the latest messages" in full


# --- Outsiders get 404 everywhere --------------------------------------------


def test_outsider_gets_404_on_every_conversation_url(
    as_charlie: Client, channel: Conversation, message: Message
) -> None:
    c, m = channel.pk, message.pk
    gets = [
        reverse("messenger:conversation", args=[c]),
        reverse("messenger:settings", args=[c]),
        reverse("messenger:message_edit", args=[m]),
        reverse("messenger:message_delete", args=[m]),
    ]
    for path in gets:
        assert as_charlie.get(path).status_code == 404, path
    older = as_charlie.get(f"{reverse('messenger:conversation', args=[c])}?before=5", HTTP_HX_REQUEST="true")
    assert older.status_code == 404
    posts = [
        (reverse("messenger:send", args=[c]), {"body": "let me in", "client_id": str(uuid.uuid4())}),
        (reverse("messenger:message_edit", args=[m]), {"body": "mine now"}),
        (reverse("messenger:message_delete", args=[m]), {}),
        (reverse("messenger:message_react", args=[m]), {"emoji": "👍"}),
        (reverse("messenger:rename", args=[c]), {"name": "taken"}),
        (reverse("messenger:topic", args=[c]), {"topic": "taken"}),
        (reverse("messenger:mute", args=[c]), {"muted": "on"}),
        (reverse("messenger:leave", args=[c]), {}),
        (reverse("messenger:archive", args=[c]), {}),
        (reverse("messenger:members_add", args=[c]), {"members": ["1"]}),
        (reverse("messenger:member_remove", args=[c, message.author_id]), {}),
    ]
    for path, data in posts:
        assert as_charlie.post(path, data).status_code == 404, path
    assert Message.objects.count() == 1
    assert Message.objects.get().body == "Kick-off at *nine*"
    assert not Reaction.objects.exists()


def test_outsider_is_not_offered_the_conversation_anywhere(
    as_charlie: Client, channel: Conversation, message: Message
) -> None:
    page = _page(as_charlie.get(reverse("messenger:home")))

    assert "project" not in page


# --- Home: what is waiting, or how to start ----------------------------------


def _home_sections(page: str) -> set[str]:
    return {name for name in ("data-home-unread", "data-home-recent", "data-home-start") if name in page}


def test_home_tells_a_newcomer_how_to_start(as_charlie: Client) -> None:
    page = _page(as_charlie.get(reverse("messenger:home")))

    assert _home_sections(page) == {"data-home-start"}
    for action in ("Message a colleague", "Join your channels", "Start a group"):
        assert action in page
    assert f'href="{reverse("messenger:people")}"' in page


def test_home_lists_what_is_waiting_and_then_says_all_caught_up(
    as_bob: Client, bob: User, alice: User, channel: Conversation, message: Message
) -> None:
    services.message_send(actor=alice, conversation_id=channel.pk, body=f"@{bob.handle} can you check?")

    page = _page(as_bob.get(reverse("messenger:home")))
    assert _home_sections(page) == {"data-home-unread"}
    item = re.search(rf'<a class="home-item"[^>]*data-home-item="{channel.pk}".*?</a>', page, re.S)
    assert item is not None
    assert "project" in item.group() and "@1" in item.group() and "2 new" in item.group()

    services.conversation_mark_read(actor=bob, conversation_id=channel.pk)
    page = _page(as_bob.get(reverse("messenger:home")))
    assert _home_sections(page) == {"data-home-recent"}
    assert "all caught up" in page and "Nothing unread." in page
    assert f'data-home-item="{channel.pk}"' in page


def test_home_queries_do_not_grow_with_the_conversations(as_bob: Client, alice: User, bob: User) -> None:
    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert as_bob.get(reverse("messenger:home")).status_code == 200
        return len(captured)

    services.channel_create(actor=alice, name="first", member_ids=[bob.pk])
    as_bob.get(reverse("messenger:home"))  # warm: session, content types
    few = count()
    for n in range(8):
        room = services.channel_create(actor=alice, name=f"room-{n}", member_ids=[bob.pk])
        services.message_send(actor=alice, conversation_id=room.pk, body=f"Nachricht {n}")
    assert count() == few


# --- Sending, editing, deleting, reacting without JavaScript -----------------


def test_send_twice_with_the_same_client_id_creates_one_message(
    as_bob: Client, channel: Conversation
) -> None:
    url = reverse("messenger:send", args=[channel.pk])
    data = {"body": "Only once, please", "client_id": str(uuid.uuid4())}

    first = as_bob.post(url, data)
    second = as_bob.post(url, data)

    sent = Message.objects.get(body="Only once, please")
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == f"{channel.get_absolute_url()}#m{sent.pk}"


def test_conversation_page_renders_a_fresh_client_id_each_time(as_bob: Client, channel: Conversation) -> None:
    pattern = r'name="client_id" value="([0-9a-f-]{36})"'
    first = re.search(pattern, _page(as_bob.get(channel.get_absolute_url())))
    second = re.search(pattern, _page(as_bob.get(channel.get_absolute_url())))

    assert first and second and first.group(1) != second.group(1)


def test_send_a_reply(as_bob: Client, channel: Conversation, message: Message) -> None:
    as_bob.post(
        reverse("messenger:send", args=[channel.pk]),
        {"body": "Agreed", "client_id": str(uuid.uuid4()), "reply_to": str(message.pk)},
    )

    assert Message.objects.get(body="Agreed").reply_to == message


def test_too_long_a_body_shows_the_error_and_stores_nothing(as_bob: Client, channel: Conversation) -> None:
    limit = settings.KONTOR_MESSAGE_MAX_CHARS
    response = as_bob.post(
        reverse("messenger:send", args=[channel.pk]),
        {"body": "x" * (limit + 1), "client_id": str(uuid.uuid4())},
    )

    assert response.status_code == 400
    assert f"Messages are limited to {limit:,} characters" in _page(response)
    assert 'aria-invalid="true"' in _page(response)  # the draft stays in the composer
    assert not Message.objects.filter(conversation=channel).exists()


def test_an_empty_message_is_refused(as_bob: Client, channel: Conversation) -> None:
    response = as_bob.post(reverse("messenger:send", args=[channel.pk]), {"body": "   "})

    assert response.status_code == 400
    assert not Message.objects.exists()


def test_edit_own_message(as_alice: Client, message: Message) -> None:
    response = as_alice.post(
        reverse("messenger:message_edit", args=[message.pk]), {"body": "Kick-off at ten"}
    )

    message.refresh_from_db()
    assert response.status_code == 302
    assert message.body == "Kick-off at ten" and message.edited_at is not None


def test_editing_someone_elses_message_is_refused(as_bob: Client, message: Message) -> None:
    response = as_bob.post(reverse("messenger:message_edit", args=[message.pk]), {"body": "Hijacked"})

    message.refresh_from_db()
    assert response.status_code == 400
    assert "You can only edit your own messages." in _page(response)
    assert message.body == "Kick-off at *nine*"


def test_delete_own_message_after_confirming(as_alice: Client, message: Message) -> None:
    confirm = as_alice.get(reverse("messenger:message_delete", args=[message.pk]))
    assert "Delete this message?" in _page(confirm)

    response = as_alice.post(reverse("messenger:message_delete", args=[message.pk]))

    message.refresh_from_db()
    assert response.status_code == 302
    assert message.deleted_at is not None


def test_react_and_unreact(as_bob: Client, message: Message, bob: User) -> None:
    url = reverse("messenger:message_react", args=[message.pk])

    as_bob.post(url, {"emoji": "🎉"})
    assert Reaction.objects.filter(message=message, user=bob, emoji="🎉").exists()

    as_bob.post(url, {"emoji": "🎉", "remove": "on"})
    assert not Reaction.objects.filter(message=message).exists()


def test_a_bad_reaction_is_explained(as_bob: Client, message: Message) -> None:
    response = as_bob.post(
        reverse("messenger:message_react", args=[message.pk]), {"emoji": "hello"}, follow=True
    )

    assert "React with an emoji" in _page(response)
    assert not Reaction.objects.exists()


# --- Starting conversations ----------------------------------------------------


def test_people_directory_lists_colleagues_and_messages_one(
    as_alice: Client, alice: User, bob: User, charlie: User
) -> None:
    page = _page(as_alice.get(reverse("messenger:people"), {"q": "brandt"}))
    assert "Bob Brandt" in page and "Charlie Czerny" not in page

    response = as_alice.post(reverse("messenger:direct_open", args=[bob.pk]))

    direct = Conversation.objects.get(kind=Conversation.Kind.DIRECT)
    assert response["Location"] == direct.get_absolute_url()
    assert set(direct.memberships.values_list("user_id", flat=True)) == {alice.pk, bob.pk}
    again = as_alice.post(reverse("messenger:direct_open", args=[bob.pk]))
    assert again["Location"] == direct.get_absolute_url()
    assert Conversation.objects.filter(kind=Conversation.Kind.DIRECT).count() == 1


def test_new_group_is_named_after_its_members_unless_named(
    as_alice: Client, bob: User, charlie: User
) -> None:
    response = as_alice.post(reverse("messenger:group_new"), {"members": [bob.pk, charlie.pk]})

    group = Conversation.objects.get(kind=Conversation.Kind.GROUP)
    assert response["Location"] == group.get_absolute_url()
    assert group.name == "Alice, Bob and Charlie"
    assert group.memberships.count() == 3


def test_new_group_needs_someone_else(as_alice: Client) -> None:
    response = as_alice.post(reverse("messenger:group_new"), {"name": "Just me", "members": []})

    assert response.status_code == 400
    assert not Conversation.objects.exists()


def test_channel_create_join_and_leave(as_alice: Client, as_bob: Client, bob: User) -> None:
    created = as_alice.post(
        reverse("messenger:channel_new"), {"name": "#launch", "topic": "Go-live", "is_private": "0"}
    )
    channel = Conversation.objects.get(name="launch")
    assert created["Location"] == channel.get_absolute_url()
    assert not channel.is_private

    browse = _page(as_bob.get(reverse("messenger:channels")))
    assert "launch" in browse and reverse("messenger:channel_join", args=[channel.pk]) in browse

    joined = as_bob.post(reverse("messenger:channel_join", args=[channel.pk]))
    assert joined["Location"] == channel.get_absolute_url()
    assert Membership.objects.filter(conversation=channel, user=bob, left_at__isnull=True).exists()

    left = as_bob.post(reverse("messenger:leave", args=[channel.pk]))
    assert left["Location"] == reverse("messenger:home")
    assert not Membership.objects.filter(conversation=channel, user=bob, left_at__isnull=True).exists()


def test_a_taken_channel_name_is_explained(as_alice: Client, channel: Conversation) -> None:
    response = as_alice.post(reverse("messenger:channel_new"), {"name": "Project", "is_private": "0"})

    assert response.status_code == 400
    assert "A channel named #Project exists already." in _page(response)
    assert Conversation.objects.filter(kind=Conversation.Kind.CHANNEL).count() == 1


def test_private_channels_cannot_be_joined_by_outsiders(as_alice: Client, as_charlie: Client) -> None:
    as_alice.post(reverse("messenger:channel_new"), {"name": "supervisory-board", "is_private": "1"})
    board = Conversation.objects.get(name="supervisory-board")

    assert "supervisory-board" not in _page(as_charlie.get(reverse("messenger:channels")))
    assert as_charlie.post(reverse("messenger:channel_join", args=[board.pk])).status_code == 404


# --- Settings ----------------------------------------------------------------------


def test_settings_rename_topic_mute_add_and_remove(
    as_alice: Client, channel: Conversation, alice: User, bob: User, charlie: User
) -> None:
    c = channel.pk
    as_alice.post(reverse("messenger:rename", args=[c]), {"name": "project-x"})
    as_alice.post(reverse("messenger:topic", args=[c]), {"topic": "New plan"})
    as_alice.post(reverse("messenger:mute", args=[c]), {"muted": "on"})
    as_alice.post(reverse("messenger:members_add", args=[c]), {"members": [charlie.pk]})
    as_alice.post(reverse("messenger:member_remove", args=[c, bob.pk]))

    channel.refresh_from_db()
    assert (channel.name, channel.topic) == ("project-x", "New plan")
    assert Membership.objects.get(conversation=channel, user=alice).is_muted
    active = set(channel.memberships.filter(left_at__isnull=True).values_list("user_id", flat=True))
    assert active == {alice.pk, charlie.pk}


def test_only_owners_remove_people(as_bob: Client, channel: Conversation, alice: User) -> None:
    response = as_bob.post(reverse("messenger:member_remove", args=[channel.pk, alice.pk]), follow=True)

    assert "Only an owner can remove people." in _page(response)
    assert Membership.objects.get(conversation=channel, user=alice).left_at is None


def test_owner_archives_a_channel_and_it_stays_readable(
    as_alice: Client, as_bob: Client, channel: Conversation, message: Message
) -> None:
    as_alice.post(reverse("messenger:archive", args=[channel.pk]))

    page = _page(as_bob.get(channel.get_absolute_url()))
    assert "This channel was archived" in page
    assert 'id="composer"' not in page
    refused = as_bob.post(
        reverse("messenger:send", args=[channel.pk]), {"body": "still here?", "client_id": str(uuid.uuid4())}
    )
    assert refused.status_code == 400
    assert not Message.objects.filter(body="still here?").exists()


# --- Search ------------------------------------------------------------------------


def test_search_finds_messages_of_ones_conversations_highlighted(
    as_bob: Client, as_charlie: Client, channel: Conversation, alice: User, charlie: User
) -> None:
    services.message_send(actor=alice, conversation_id=channel.pk, body="The quarterly budget is approved")
    services.channel_create(actor=charlie, name="elsewhere")
    other = Conversation.objects.get(name="elsewhere")
    services.message_send(actor=charlie, conversation_id=other.pk, body="My own budget notes")

    found = _page(as_bob.get(reverse("messenger:search"), {"q": "budget"}))
    assert "<mark>budget</mark>" in found
    assert "quarterly" in found and "My own" not in found
    assert "?around=" in found  # links to the message in context

    outsider = _page(as_charlie.get(reverse("messenger:search"), {"q": "quarterly"}))
    assert "<mark>" not in outsider and "budget is approved" not in outsider
    assert "No messages match" in outsider


def test_search_snippets_escape_the_body(as_bob: Client, channel: Conversation, alice: User) -> None:
    services.message_send(actor=alice, conversation_id=channel.pk, body="<b>budget</b> <script>x()</script>")

    page = _page(as_bob.get(reverse("messenger:search"), {"q": "budget"}))

    snippet = page.split('class="hit__snippet">')[1].split("</span>")[0]
    assert "<mark>budget</mark>" in snippet
    assert "<script>" not in snippet and "<b>" not in snippet


# --- Safety --------------------------------------------------------------------------


def test_a_script_in_a_message_renders_inert(as_bob: Client, channel: Conversation, alice: User) -> None:
    services.message_send(
        actor=alice,
        conversation_id=channel.pk,
        body='<script>alert("x")</script> [click](javascript:alert(1)) <img src=x onerror=alert(1)>',
    )

    page = _page(as_bob.get(channel.get_absolute_url()))

    assert '<script>alert("x")</script>' not in page
    assert "&lt;script&gt;" in page  # shown as text
    assert 'href="javascript:' not in page
    assert "<img src=x" not in page


class _InlineFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if "style" in values or any(name.startswith("on") for name in values):
            self.problems.append(f"<{tag} {values}>")
        self._script = tag == "script" and not values.get("src") and values.get("type") != "application/json"

    def handle_data(self, data: str) -> None:
        if self._script and data.strip():
            self.problems.append(f"inline script: {data[:40]}")

    def handle_endtag(self, tag: str) -> None:
        self._script = False


def test_pages_have_no_inline_script_style_or_handlers(
    as_alice: Client, channel: Conversation, message: Message
) -> None:
    for path in [
        channel.get_absolute_url(),
        reverse("messenger:settings", args=[channel.pk]),
        reverse("messenger:people"),
        reverse("messenger:channels"),
        reverse("messenger:group_new"),
        f"{reverse('messenger:search')}?q=kick",
    ]:
        finder = _InlineFinder()
        finder.feed(_page(as_alice.get(path)))
        assert finder.problems == [], path


def test_anonymous_visitors_are_sent_to_sign_in(client: Client, channel: Conversation) -> None:
    response = client.get(channel.get_absolute_url())

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
